"""Creative Commons licences: SPDX ids, their terms, their deeds, and licence URLs found in feeds."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ELEMENTS = ("BY", "BY-SA", "BY-ND", "BY-NC", "BY-NC-SA", "BY-NC-ND")
_VERSIONS = ("1.0", "2.0", "2.5", "3.0", "4.0")
_NAMES = {"BY": "Attribution", "SA": "ShareAlike", "ND": "NoDerivatives", "NC": "NonCommercial"}


@dataclass(frozen=True)
class License:
    """A Creative Commons licence (or CC0) with the terms that decide who may republish."""

    spdx: str            # "CC-BY-NC-4.0", "CC0-1.0"
    noncommercial: bool
    noderivatives: bool
    deed_url: str
    title: str           # "Creative Commons Attribution-NonCommercial 4.0 International"

    @property
    def short(self) -> str:
        """How people write it: "CC BY-NC 4.0"."""
        if self.spdx.startswith("CC0"):
            return "CC0 1.0"
        elements, version = self.spdx[3:].rsplit("-", 1)
        return f"CC {elements} {version}"


def parse_license(spdx: str) -> License | None:
    """The licence for an SPDX id like ``CC-BY-SA-4.0`` (case-insensitive), or None."""
    value = spdx.strip().upper()
    if value in ("CC0-1.0", "CC0"):
        return License("CC0-1.0", False, False, "https://creativecommons.org/publicdomain/zero/1.0/",
                       "CC0 1.0 Universal (public domain dedication)")
    match = re.fullmatch(r"CC-(BY(?:-NC)?(?:-SA|-ND)?)-(\d\.\d)", value)
    if not match or match.group(1) not in _ELEMENTS or match.group(2) not in _VERSIONS:
        return None
    elements, version = match.groups()
    words = "-".join(_NAMES[e] for e in elements.split("-"))
    suffix = " International" if version == "4.0" else (" Unported" if version == "3.0" else " Generic")
    return License(
        spdx=f"CC-{elements}-{version}",
        noncommercial="NC" in elements.split("-"),
        noderivatives="ND" in elements.split("-"),
        deed_url=f"https://creativecommons.org/licenses/{elements.lower()}/{version}/",
        title=f"Creative Commons {words} {version}{suffix}",
    )


def license_from_url(url: str) -> License | None:
    """The licence a feed declares by URL (``<link rel="license">``, ``creativeCommons:license``)."""
    match = re.search(r"creativecommons\.org/(licenses|publicdomain)/([a-z-]+)/(\d\.\d)", url.strip().lower())
    if not match:
        return None
    kind, elements, version = match.groups()
    if kind == "publicdomain":
        return parse_license("CC0-1.0") if elements == "zero" else None
    return parse_license(f"CC-{elements.upper()}-{version}")

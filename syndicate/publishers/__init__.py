"""Partner kinds. Each module defines ``Config`` (its config model) and ``Publisher``; the registry is
``config.PARTNER_KINDS``."""

from __future__ import annotations

from typing import Any

from ..config import PartnerConfig, partner_module
from .base import PublishContext, Publisher


def publisher_class(kind: str) -> type[Publisher]:
    """The publisher class of a partner kind."""
    module: Any = partner_module(kind)
    return module.Publisher  # type: ignore[no-any-return]


def make_publisher(partner: PartnerConfig, context: PublishContext) -> Publisher:
    """The publisher for a partner, by its kind."""
    module: Any = partner_module(partner.kind)
    return module.Publisher(partner, context)  # type: ignore[no-any-return]

"""TOML → validated, frozen config objects.

The config is read and validated once, at load; every error names the file, the key and what is
wrong, and never echoes a secret. Secrets are only ever ``{ env = "NAME" }`` or ``{ file = "path" }``
and are resolved here, at the moment a publisher asks for them (``Secret.reveal``), so that commands
that need no credentials (``check``, ``preview``) work without them.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import re
import stat
import string
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from . import redact
from .errors import ConfigError
from .models import DEFAULT_EMBED_HOSTS, DEFAULT_STRIP_PARAMS  # noqa: F401 (re-exported: config's defaults)

#: Every partner kind: its id → the module that implements it (a ``Config`` model and a ``Publisher``).
#: Adding a CMS kind is one new module under ``publishers/`` and one line here.
PARTNER_KINDS: dict[str, str] = {
    "files": "syndicate.publishers.files",
    "wordpress": "syndicate.publishers.wordpress",
    "ghost": "syndicate.publishers.ghost",
}


def http_url(value: str) -> str:
    """An http(s) URL, as an author or editor gives it (a query string is fine)."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


def site_url(value: str) -> str:
    """A partner site's address: http(s), a host, no credentials, no query or fragment, no trailing slash."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials: give them as the partner's secret")
    if parts.query or parts.fragment:
        raise ValueError("must be the site's address, without ?query or #fragment")
    return value.rstrip("/")


#: Config types for URLs (one check each, wherever a URL is configured).
HttpURL = Annotated[str, AfterValidator(http_url)]
SiteURL = Annotated[str, AfterValidator(site_url)]


def packaged_templates() -> Path:
    """The templates shipped with syndicate (inside the wheel, or the repository's top-level folder)."""
    here = Path(__file__).parent
    inside = here / "templates"
    return inside if (inside / "default").is_dir() else here.parent / "templates"


#: Sane bounds for the config's numbers: a value past them is a typo or an attack, never a wish, and
#: every duration stays far inside what ``datetime``/``timedelta`` and the fetch watchdog can hold.
MAX_EMBARGO_DAYS = 36_500            # a century
MAX_NETWORK_SECONDS = 3_600          # one read or one whole download: an hour is already absurd
MAX_FEED_BYTES = 1_000_000_000       # the parse workers' address space is 1 GB
MAX_GIVE_UP_HOURS = 24 * 365 * 10    # ten years of retries
MAX_RETRY_WAIT_SECONDS = 86_400      # a day of waiting out 429/503 in one run
#: How deeply arrays and tables may nest in a config file (ours nest three levels; tomllib recurses).
MAX_NESTING = 32

# Control characters in a config string are never meant: they forge output lines, and a NUL in a
# path or an environment variable name makes the OS calls raise.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


class Model(BaseModel):
    """Frozen, strict-about-keys base for every config object; numbers are finite (no inf/nan)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


class Secret(Model):
    """A credential given by reference: ``{ env = "NAME" }`` or ``{ file = "path" }``."""

    env: str | None = None
    file: str | None = None
    #: The key this secret was given under ("partners.x.password"), for messages.
    key: str = Field(default="", exclude=True)
    #: The config file's folder, for a relative ``file``.
    base_dir: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _one_source(self) -> Secret:
        if (self.env is None) == (self.file is None):
            raise ValueError('give exactly one of { env = "NAME" } or { file = "path" }')
        return self

    def reveal(self) -> str:
        """The secret's value, read now; registered with the log redactor before it is returned."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise ConfigError(f"{self.key}: environment variable {self.env} is not set")
        else:
            path = Path(self.base_dir, self.file or "")
            try:
                info = path.stat()
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{self.key}: cannot read secret file {path}: "
                                  f"{getattr(exc, 'strerror', None) or exc}") from None
            if not stat.S_ISREG(info.st_mode):  # a directory cannot be read, a FIFO would block the run
                raise ConfigError(f"{self.key}: secret file {path} is not a regular file")
            # Like netrc's security check: a secret file others can read is refused, not used.
            if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(
                    f"{self.key}: secret file {path} is readable by others "
                    f"(mode {stat.filemode(info.st_mode)}); run: chmod 600 {path}"
                )
            if hasattr(os, "getuid") and info.st_uid != os.getuid():
                raise ConfigError(f"{self.key}: secret file {path} is not owned by the user running syndicate")
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{self.key}: cannot read secret file {path}: {exc.strerror}") from None
            except UnicodeDecodeError:
                raise ConfigError(f"{self.key}: secret file {path} is not UTF-8 text") from None
            if not value:
                raise ConfigError(f"{self.key}: secret file {path} is empty")
        redact.register(value)
        return value

    def __repr__(self) -> str:  # never the value, only where it comes from
        return f"Secret(env={self.env!r})" if self.env else f"Secret(file={self.file!r})"


def _secret_field(value: Any) -> Any:
    """Refuse a literal secret without ever repeating it."""
    if isinstance(value, str):
        raise ValueError('a literal secret is not allowed here: write { env = "NAME" } or { file = "path" }')
    return value


class StateConfig(Model):
    """``[state]``: where the ledger lives (a SQLite file, or a PostgreSQL server several hosts share)."""

    url: str = "sqlite:///.syndicate/state.db"
    #: PostgreSQL's password, by reference (or none: libpq's own ``PGPASSWORD`` / ``~/.pgpass``).
    password: Secret | None = None
    #: How long a run's hold on a feed or partner outlives a connection that went silent.
    lease_seconds: float = Field(default=60, ge=1, le=3600)

    @field_validator("url")
    @classmethod
    def _state_url(cls, value: str) -> str:
        if not is_postgres_url(value):
            return value
        from .postgres import check_url  # imports psycopg: only for a server's URL

        return check_url(value)

    @field_validator("password")
    @classmethod
    def _password_for_a_server(cls, value: Secret | None, info: ValidationInfo) -> Secret | None:
        if value is not None and not is_postgres_url(str(info.data.get("url", ""))):
            raise ValueError('only a PostgreSQL store (url = "postgresql://…") takes a password')
        return value

    @property
    def is_postgres(self) -> bool:
        """Whether the store is a PostgreSQL server (else a SQLite file)."""
        return is_postgres_url(self.url)


def is_postgres_url(url: str) -> bool:
    """Whether a ``[state] url`` names a PostgreSQL server (any driver, or the ``postgres://`` misspelling)."""
    return url.split(":", 1)[0].lower().split("+", 1)[0] in ("postgresql", "postgres")


def _prepare_state(raw: dict[str, Any], base_dir: Path) -> list[str]:
    """``[state] password`` must be a reference; tag it with its key and folder. Returns problems."""
    state = raw.get("state")
    if not isinstance(state, dict) or "password" not in state:
        return []
    try:
        _secret_field(state["password"])
    except ValueError as exc:
        raw["state"] = {key: value for key, value in state.items() if key != "password"}  # said once, here
        return [f"state.password: {exc}"]
    if isinstance(state["password"], dict):
        raw["state"] = {**state, "password": {**state["password"], "key": "state.password",
                                              "base_dir": str(base_dir)}}
    return []


class NetworkConfig(Model):
    timeout: float = Field(default=10, gt=0, le=MAX_NETWORK_SECONDS)
    deadline: float = Field(default=30, gt=0, le=MAX_NETWORK_SECONDS)
    max_bytes: int = Field(default=10_000_000, gt=0, le=MAX_FEED_BYTES)
    concurrency: int = Field(default=8, ge=1, le=64)
    allow_private: bool = False


class RewriteConfig(Model):
    embed_hosts: tuple[str, ...] = DEFAULT_EMBED_HOSTS
    strip_params: tuple[str, ...] = DEFAULT_STRIP_PARAMS


class DeliveryConfig(Model):
    """How long a failing delivery keeps being retried before it is marked failed."""

    give_up_after_hours: float = Field(default=72, gt=0, le=MAX_GIVE_UP_HOURS)
    #: Upper bound on the time one run spends waiting out 429/503 and backoff for one partner.
    max_retry_seconds: float = Field(default=120, ge=0, le=MAX_RETRY_WAIT_SECONDS)


class SeriesConfig(Model):
    name: str
    category: str
    #: How series notes name a part; ``{n}`` and ``{title}`` are filled in.
    label: str = "Part {n}: {title}"


class SourceConfig(Model):
    id: str = Field(default="", exclude=True)
    name: str
    site_url: HttpURL
    feed: str = Field(min_length=1)  # a URL or a path; empty would name the config's own folder
    aliases: tuple[str, ...] = ()
    author: str | None = None
    license: str = "permission"
    embargo_days: int = Field(default=0, ge=0, le=MAX_EMBARGO_DAYS)
    exclude_categories: tuple[str, ...] = ()
    series: tuple[SeriesConfig, ...] = ()

    @field_validator("license")
    @classmethod
    def _known_license(cls, value: str) -> str:
        from .licenses import (
            parse_license,  # a light module; imported here to keep config's imports small
        )

        if value in ("permission", "feed"):
            return value
        if parse_license(value) is None:
            raise ValueError(
                f"unknown licence {value!r}: use \"permission\", \"feed\" or a Creative Commons SPDX id "
                "such as \"CC-BY-4.0\", \"CC-BY-NC-ND-4.0\" or \"CC0-1.0\""
            )
        return value

    @property
    def is_local_file(self) -> bool:
        return not self.feed.startswith(("http://", "https://"))


class PartnerConfig(Model):
    """What every partner kind has; each publisher module extends it as ``Config``."""

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()

    id: str = Field(default="", exclude=True)
    name: str
    kind: str
    status: Literal["draft", "publish"] = "draft"
    updates: Literal["push", "ignore"] = "push"
    template: str = "default"
    commercial: bool = True
    concurrency: int = Field(default=1, ge=1, le=16)


class GrantConfig(Model):
    source: str
    partner: str
    evidence: str
    embargo_days: int = Field(default=0, ge=0, le=MAX_EMBARGO_DAYS)
    expires: dt.date | None = None
    exclude_categories: tuple[str, ...] = ()
    include_categories: tuple[str, ...] = ()


class OverrideConfig(Model):
    source: str
    entry: str
    partner: str | None = None
    featured_image: HttpURL | None = None
    featured_image_alt: str | None = None
    featured_image_caption: str | None = None
    featured_image_credit: str | None = None
    featured_image_credit_url: HttpURL | None = None
    featured_image_note: str | None = None
    series_label: str | None = None
    skip: bool = False


class Config(Model):
    state: StateConfig = StateConfig()
    network: NetworkConfig = NetworkConfig()
    rewrite: RewriteConfig = RewriteConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    sources: dict[str, SourceConfig] = {}
    partners: dict[str, Any] = {}
    grants: tuple[GrantConfig, ...] = ()
    overrides: tuple[OverrideConfig, ...] = ()
    #: Where the file was read from; relative paths in it are relative to this folder.
    path: Path = Field(default=Path("syndicate.toml"), exclude=True)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        return (self.base_dir / relative).resolve() if not os.path.isabs(relative) else Path(relative)

    @property
    def state_file(self) -> Path | None:
        """The SQLite file of the store, when the store is one (None for :memory: or a server)."""
        from .locking import sqlite_file

        return sqlite_file(self.state_url)

    @property
    def state_url(self) -> str:
        """The store's SQLAlchemy URL with a relative SQLite path made relative to the config's folder."""
        url = self.state.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
            return prefix + str(self.resolve(url[len(prefix):]))
        return url


def partner_module(kind: str) -> Any:
    """The module implementing a partner kind (imported on demand: CMS clients are not needed for --help)."""
    return importlib.import_module(PARTNER_KINDS[kind])


def _partner_model(kind: str) -> type[PartnerConfig]:
    return partner_module(kind).Config  # type: ignore[no-any-return]


def _format_loc(prefix: tuple[str | int, ...], loc: tuple[str | int, ...]) -> str:
    parts: list[str] = []
    for item in (*prefix, *loc):
        if isinstance(item, int):
            parts[-1 if parts else 0:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        elif item in ("function-after[_one_source()]",) or item.startswith(("function-", "tagged-union")):
            continue
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def _errors(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[str]:
    """Pydantic's errors as 'key: what is wrong' lines, never echoing the input value."""
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        lines.append(f"{_format_loc(prefix, tuple(err['loc']))}: {msg}")
    return lines


def label_problem(label: str) -> str | None:
    """Why a series label template is refused, or None when it is fine.

    Labels are ``str.format`` templates filled with ``n`` and ``title`` only: ``{title.x}`` or
    ``{n[0]}`` would raise at render time (or, worse, read attributes of Python objects), so any
    field other than a plain ``{n}`` or ``{title}`` (a format spec such as ``{n:02d}`` is fine) is refused."""
    hint = "may only use {n} and {title} (write {{ and }} for a literal brace)"
    try:
        fields = list(string.Formatter().parse(label))
    except ValueError:
        return hint
    for _text, name, spec, _conversion in fields:
        if name is None:
            continue
        if name not in ("n", "title") or "{" in (spec or ""):
            return hint
    try:
        label.format(n=1, title="t")
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return hint + ": the format spec does not fit"
    return None


def _shape_problems(data: Any) -> list[str]:
    """Nesting deeper than any config needs, and control characters in strings, by key.

    Walked iteratively: a hostile file must not make the check itself recurse."""
    problems: list[str] = []
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        key, value, depth = stack.pop()
        if depth > MAX_NESTING:
            problems.append(f"{key.split('[')[0]}: nested more than {MAX_NESTING} levels deep")
            continue
        if isinstance(value, dict):
            stack.extend((f"{key}.{k}" if key else str(k), v, depth + 1) for k, v in value.items())
            if any(_CONTROL.search(str(k)) for k in value):
                problems.append(f"{key or '(top level)'}: a key name contains a control character")
        elif isinstance(value, list):
            stack.extend((f"{key}[{i}]", v, depth + 1) for i, v in enumerate(value))
        elif isinstance(value, str) and _CONTROL.search(value):
            problems.append(f"{key}: must not contain control characters")
    return sorted(set(problems))


def _prepare_secrets(raw: dict[str, Any], model: type[PartnerConfig], pid: str, base_dir: Path) -> list[str]:
    """Check each secret field is a reference and tag it with its key; return problems."""
    problems = []
    for field in model.SECRET_FIELDS:
        if field not in raw:
            continue
        key = f"partners.{pid}.{field}"
        value = raw[field]
        try:
            _secret_field(value)
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
            continue
        if isinstance(value, dict):
            raw[field] = {**value, "key": key, "base_dir": str(base_dir)}
    return problems


def parse_config(data: dict[str, Any], path: Path) -> Config:
    """Validate a parsed TOML document; raise ConfigError listing every problem found."""
    shape = _shape_problems(data)
    if shape:  # checked first: what follows may not be able to look at such values safely
        raise ConfigError(f"{path}: invalid config\n" + "\n".join(f"  {p}" for p in shape))
    problems: list[str] = []
    raw = dict(data)
    sources_raw = raw.get("sources", {})
    partners_raw = raw.pop("partners", {})
    if not isinstance(partners_raw, dict):
        problems.append("partners: must be a table of partners ([partners.ID])")
        partners_raw = {}
    if isinstance(sources_raw, dict):
        raw["sources"] = {
            sid: ({**s, "id": sid} if isinstance(s, dict) else s) for sid, s in sources_raw.items()
        }

    partners: dict[str, PartnerConfig] = {}
    for pid, praw in partners_raw.items():
        if not isinstance(praw, dict):
            problems.append(f"partners.{pid}: must be a table")
            continue
        kind = praw.get("kind")
        if kind is None:
            problems.append(f"partners.{pid}.kind: missing (one of {', '.join(PARTNER_KINDS)})")
            continue
        if kind not in PARTNER_KINDS:
            problems.append(
                f"partners.{pid}.kind: unknown partner kind {kind!r} (one of {', '.join(PARTNER_KINDS)})"
            )
            continue
        model = _partner_model(kind)
        praw = {**praw, "id": pid}
        secret_problems = _prepare_secrets(praw, model, pid, path.parent)
        problems += secret_problems
        if secret_problems:
            continue
        try:
            partners[pid] = model.model_validate(praw)
        except ValidationError as exc:
            problems += _errors(exc, ("partners", pid))

    problems += _prepare_state(raw, path.parent)
    config = None
    try:
        config = Config.model_validate({**raw, "path": path})
    except ValidationError as exc:
        problems += _errors(exc)

    source_ids = set(sources_raw) if isinstance(sources_raw, dict) else set()
    for table, _checks in (("grants", ("source", "partner")), ("overrides", ("source", "partner"))):
        items = raw.get(table, [])
        for i, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("source"), str) and item["source"] not in source_ids:
                problems.append(f"{table}[{i}].source: unknown source {item['source']!r}")
            if isinstance(item.get("partner"), str) and item["partner"] not in partners_raw:
                problems.append(f"{table}[{i}].partner: unknown partner {item['partner']!r}")

    if config is not None:
        for sid, source in config.sources.items():
            seen = set()
            for j, series in enumerate(source.series):
                if series.name in seen:
                    problems.append(f"sources.{sid}.series[{j}].name: series {series.name!r} is defined twice")
                seen.add(series.name)
                problem = label_problem(series.label)
                if problem:
                    problems.append(f"sources.{sid}.series[{j}].label: {problem}")

    if problems:
        raise ConfigError(f"{path}: invalid config\n" + "\n".join(f"  {p}" for p in problems))
    assert config is not None
    return config.model_copy(update={"partners": partners})


_OPENERS = re.compile(r"(?:[\[{]\s*){%d}" % MAX_NESTING)
_ASSIGNMENT = re.compile(r"^\s*([A-Za-z0-9_.\-\"' ]+?)\s*=", re.M)
_TABLE = re.compile(r"^\s*\[+\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]+", re.M)


def _too_deep(text: str) -> str:
    """The message for a file too deeply nested to parse, naming the key when it can be found."""
    found = _OPENERS.search(text)
    if found is None:
        return f"nested more than {MAX_NESTING} levels deep"
    before = text[:found.start()]
    line = before.count("\n") + 1
    keys = list(_ASSIGNMENT.finditer(before))
    tables = list(_TABLE.finditer(before))
    key = keys[-1].group(1).strip() if keys else "(top level)"
    if tables and (not keys or tables[-1].start() < keys[-1].start()):
        key = f"{tables[-1].group(1).strip()}.{key}" if keys else tables[-1].group(1).strip()
    return f"{key}: nested more than {MAX_NESTING} levels deep (line {line})"


def default_config_path() -> Path:
    """``$SYNDICATE_CONFIG``, else ``./syndicate.toml``."""
    return Path(os.environ.get("SYNDICATE_CONFIG") or "syndicate.toml")


def load_config(path: Path | str | None = None) -> Config:
    """Read and validate the config file; ConfigError (exit 2) on any problem."""
    path = Path(path) if path is not None else default_config_path()
    path = path.absolute()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (run `syndicate init` to write one)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(f"{path}: {_too_deep(text)}") from None
    return parse_config(data, path)

"""HTTP for CMS publishers: retries that never repeat a write blindly, Retry-After, no redirects.

* Reads (GET) are retried on timeouts, resets, 429 and 5xx with capped, jittered exponential backoff.
* 429 and 503 are waited out as ``Retry-After`` says (capped), for reads and writes alike: the server
  said it did not process the request. Any other failure of a write after it was sent (timeout, reset,
  other 5xx) raises ``UnknownOutcome``: the caller reconciles before sending it again.
* Writes never follow redirects: a redirect is an error naming the URL to fix (requests would turn a
  POST into a GET on 301/302).
* The total time spent waiting in one run is bounded (``PublishContext.max_retry_seconds``).
* Error messages name the partner and never carry credentials (``redact``).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

from ..redact import redact
from .base import PartnerDown, PublishContext, PublishError, UnknownOutcome

READ_ATTEMPTS = 4
WRITE_RETRY_STATUSES = {429, 503}
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 60.0


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def preload() -> None:
    """Load requests now (its imports are a noticeable part of a short run), e.g. while the feeds are
    being parsed elsewhere."""
    import requests  # noqa: F401


class CMSClient:
    """A requests session bound to one partner, with the retry policy above."""

    def __init__(self, partner_name: str, base_url: str, context: PublishContext,
                 auth_headers: Callable[[], dict[str, str]]) -> None:
        self.partner_name = partner_name
        self.base_url = base_url.rstrip("/")
        self.context = context
        self.auth_headers = auth_headers
        import requests  # here, not at the top: the config of a partner needs only its models

        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or .netrc from the environment
        self.session.headers["User-Agent"] = context.user_agent
        self.waited = 0.0
        self._sleep = context.sleep or time.sleep

    def close(self) -> None:
        """Close the session."""
        self.session.close()

    def _wait(self, seconds: float, why: str) -> None:
        budget = self.context.max_retry_seconds - self.waited
        if seconds > budget:
            raise PublishError(f"{self.partner_name}: gave up waiting ({why}); it stays due for the next run")
        self.waited += seconds
        self._sleep(seconds)

    def _backoff(self, attempt: int) -> float:
        return float(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt) * (0.5 + random.random() / 2))

    def request(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201),
                describe: Callable[[requests.Response], str] | None = None, **kwargs: Any) -> requests.Response:
        """Send a request with the retry policy; return the response when its status is expected."""
        import requests

        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        write = method.upper() not in ("GET", "HEAD")
        attempt = 0
        while True:
            headers = {**kwargs.pop("headers", {}), **self.auth_headers()}
            try:
                response = self.session.request(method, url, headers=headers, timeout=self.context.timeout,
                                                allow_redirects=False, **kwargs)
            except requests.ConnectionError as exc:
                reason = _connection_reason(exc)
                if write and not _never_sent(exc):
                    raise UnknownOutcome(f"{self.partner_name}: {reason} during {method} {_path(url)}") from None
                if attempt + 1 >= READ_ATTEMPTS:
                    raise PartnerDown(f"{self.partner_name}: cannot reach {self.base_url}: {reason}") from None
                self._wait(self._backoff(attempt), reason)
                attempt += 1
                kwargs["headers"] = headers
                continue
            except requests.Timeout:
                if write:
                    raise UnknownOutcome(f"{self.partner_name}: no answer within {self.context.timeout:g} s "
                                         f"to {method} {_path(url)}") from None
                if attempt + 1 >= READ_ATTEMPTS:
                    raise PublishError(f"{self.partner_name}: no answer within {self.context.timeout:g} s "
                                       f"to GET {_path(url)}") from None
                self._wait(self._backoff(attempt), "timeout")
                attempt += 1
                kwargs["headers"] = headers
                continue
            except requests.RequestException as exc:
                raise PublishError(redact(f"{self.partner_name}: {type(exc).__name__}: {exc}")) from None

            status = response.status_code
            if status in expect:
                return response
            if status in WRITE_RETRY_STATUSES or (not write and status >= 500):
                if attempt + 1 < READ_ATTEMPTS + (2 if status in WRITE_RETRY_STATUSES else 0):
                    delay = retry_after_seconds(response.headers.get("Retry-After"))
                    delay = min(RETRY_AFTER_CAP, delay) if delay is not None else self._backoff(attempt)
                    self._wait(delay, f"HTTP {status}")
                    attempt += 1
                    kwargs["headers"] = headers
                    continue
            if write and status >= 500:
                raise UnknownOutcome(f"{self.partner_name}: HTTP {status} from {method} {_path(url)}")
            if 300 <= status < 400:
                location = response.headers.get("Location", "?")
                raise PublishError(
                    f"{self.partner_name}: {method} {_path(url)} was redirected to {redact(location)}; "
                    f"syndicate never follows redirects when writing: fix the partner's url in the config")
            message = describe(response) if describe else f"HTTP {status}"
            error = PublishError(redact(f"{self.partner_name}: {message}"))
            error.transient = status >= 500 or status == 429
            if status in (401,):
                raise PartnerDown(str(error))
            raise error


def _path(url: str) -> str:
    """A URL for messages: path only, no query string (it may carry tokens)."""
    return redact(url.split("?", 1)[0])


def _never_sent(exc: requests.ConnectionError) -> bool:
    """Did the connection fail before the request could reach the server (refused, DNS)?"""
    text = str(exc)
    return any(s in text for s in ("Connection refused", "Name or service not known", "NewConnectionError",
                                   "Failed to resolve", "nodename nor servname"))


def _connection_reason(exc: requests.ConnectionError) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "Failed to resolve" in text or "Name or service not known" in text:
        return "host name not found"
    if "reset" in text.lower() or "RemoteDisconnected" in text or "aborted" in text.lower():
        return "connection reset"
    return "connection failed"

"""The one HTTP layer every provider client goes through (urllib3).

- One module-level PoolManager, reused across warm Lambda invocations.
- TLS verification is always on, TLS 1.2 minimum (OpenMarket documents TLS 1.2).
- Connect and read timeouts on every request, and the whole body within one read timeout (a provider
  that trickles bytes cannot hold a call open); the response body is size-capped.
- Bounded retries with backoff on connection errors, 429 and 5xx; never on other 4xx, and never after
  a read timeout (a provider that is slow now stays slow: retrying would multiply the wait).
- Every failure leaves as a typed error: ProviderTimeout, ProviderUnavailable or ProviderError.
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.exceptions import (
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import (
    TimeoutError as Urllib3TimeoutError,
)
from urllib3.util.retry import Retry

from .errors import ProviderError, ProviderTimeout, ProviderUnavailable

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class HttpSettings:
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    retries: int = 2
    backoff_factor: float = 0.2
    backoff_max: float = 2.0
    max_body_bytes: int = 1 << 20  # status answers are small; a larger body is a fault, not data


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The decoded JSON body; ValueError if it is not JSON (callers turn that into ProviderError)."""
        return json.loads(self.body.decode("utf-8"))


class _Retry(Retry):
    """urllib3's Retry, except that a read timeout is final (see the module docstring)."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if isinstance(error, ReadTimeoutError):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)


_pool: urllib3.PoolManager | None = None


def pool_manager() -> urllib3.PoolManager:
    global _pool
    if _pool is None:
        _pool = urllib3.PoolManager(
            num_pools=8,
            maxsize=10,  # the fan-out width: at most 10 requests in flight per provider host
            cert_reqs="CERT_REQUIRED",
            ssl_minimum_version=ssl.TLSVersion.TLSv1_2,
        )
    return _pool


class HttpClient:
    """Sends one request for one provider and returns the raw response, or raises a typed error.

    429 and 5xx (after retries) raise ProviderUnavailable; every other status is returned for the
    provider's parser to read (providers put their error codes in 4xx bodies).
    """

    def __init__(self, provider: str, settings: HttpSettings | None = None, pool: urllib3.PoolManager | None = None) -> None:
        self.provider = provider
        self.settings = settings or HttpSettings()
        self._pool = pool

    def send(self, method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes | None = None) -> HttpResponse:
        settings = self.settings
        retry = _Retry(
            total=settings.retries,
            connect=settings.retries,
            read=settings.retries,
            status=settings.retries,
            other=0,
            redirect=0,
            allowed_methods=None,  # every call we make is a read, POST included: safe to repeat
            status_forcelist=RETRY_STATUSES,
            backoff_factor=settings.backoff_factor,
            backoff_max=settings.backoff_max,
            respect_retry_after_header=False,  # an unbounded Retry-After would break our timeouts
            raise_on_status=False,
            raise_on_redirect=False,
        )
        pool = self._pool or pool_manager()
        try:
            response = pool.request(
                method,
                url,
                headers=headers,
                body=body,
                timeout=urllib3.Timeout(connect=settings.connect_timeout, read=settings.read_timeout),
                retries=retry,
                redirect=False,
                preload_content=False,
            )
            try:
                data = self._read_body(response)
            finally:
                response.release_conn()
        except ReadTimeoutError as exc:
            raise ProviderTimeout(self.provider, f"{self.provider} did not answer within {settings.read_timeout:g}s") from exc
        except MaxRetryError as exc:
            raise self._connection_error(exc.reason) from exc
        except HTTPError as exc:
            raise self._connection_error(exc) from exc

        if len(data) > settings.max_body_bytes:
            raise ProviderError(
                self.provider, f"{self.provider} answered with a body over {settings.max_body_bytes} bytes", http_status=response.status
            )
        if response.status in RETRY_STATUSES:
            raise ProviderUnavailable(self.provider, f"{self.provider} answered HTTP {response.status}", http_status=response.status)
        return HttpResponse(response.status, {k.lower(): v for k, v in response.headers.items()}, data)

    def _read_body(self, response: urllib3.BaseHTTPResponse) -> bytes:
        """The body, within one read timeout overall: the socket timeout bounds each read, not a provider that
        trickles a byte at a time. Stops past max_body_bytes (the caller refuses the body)."""
        deadline = time.monotonic() + self.settings.read_timeout
        chunks: list[bytes] = []
        size = 0
        while size <= self.settings.max_body_bytes:
            chunk = response.read1(64 * 1024)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if time.monotonic() > deadline:
                raise ProviderTimeout(self.provider, f"{self.provider} did not finish its answer within {self.settings.read_timeout:g}s")
        return b"".join(chunks)

    def _connection_error(self, reason: BaseException | None) -> Exception:
        # NewConnectionError subclasses ConnectTimeoutError for history's sake: a refusal is not a timeout.
        if isinstance(reason, Urllib3TimeoutError) and not isinstance(reason, NewConnectionError):
            return ProviderTimeout(self.provider, f"{self.provider} did not answer in time ({type(reason).__name__})")
        if isinstance(reason, ProtocolError):
            return ProviderUnavailable(self.provider, f"connection to {self.provider} was broken")
        return ProviderUnavailable(self.provider, f"cannot reach {self.provider} ({type(reason).__name__})")

"""The one HTTP layer every provider client goes through (urllib3).

- One module-level PoolManager, reused across warm Lambda invocations.
- TLS verification is always on, TLS 1.2 minimum (OpenMarket documents TLS 1.2).
- One monotonic deadline per provider call (`Deadline`), enforced here and nowhere else: DNS, connect, TLS,
  the wait for headers, a body that drips a byte at a time, the pauses between retries. A lookup sets it once
  (`deadline_scope`) and every request it makes, retries and the credentials retry included, shares it.
  How: every socket timeout is cut to what is left; DNS runs on a small resolver pool and is waited for no longer
  than what is left; and a watchdog shuts down the sockets of an attempt still running at its end, so no
  blocking read can outlast it. Each attempt is also bounded by connect + read timeout on its own.
- Bounded retries with full-jitter backoff on connection errors, connect timeouts, 429 and 5xx; never on other
  4xx, and never after a read timeout (a provider that is slow now stays slow: retrying would multiply the wait).
  `Retry-After` is honoured when it fits in what is left of the deadline; when it does not, the call fails now
  (waiting would only turn a 503 into a 504). Retried 429/5xx bodies are never read: the connection is dropped.
- The response body is size-capped (a declared Content-Length over the cap is refused without reading).
- Every failure leaves as a typed error: ProviderTimeout, ProviderUnavailable or ProviderError.
- Nothing here logs: URLs and headers can carry credentials.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import json
import random
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import (
    TimeoutError as Urllib3TimeoutError,
)
from urllib3.util.connection import allowed_gai_family
from urllib3.util.ssl_ import is_ipaddress

from .errors import ProviderError, ProviderTimeout, ProviderUnavailable

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MIN_ATTEMPT_SECONDS = 0.05  # less than this left of the deadline: not worth opening a request
DNS_WORKERS = 2  # resolutions that may hang at once (getaddrinfo cannot be interrupted, only waited for less)


@dataclass(frozen=True, slots=True)
class HttpSettings:
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    retries: int = 2
    backoff_factor: float = 0.2
    backoff_max: float = 2.0
    max_body_bytes: int = 1 << 20  # status answers are small; a larger body is a fault, not data

    def budget(self) -> float:
        """The longest one call may take when no deadline is set: every attempt and every backoff pause."""
        backoff = sum(min(self.backoff_max, self.backoff_factor * 2**attempt) for attempt in range(self.retries))
        return (self.retries + 1) * (self.connect_timeout + self.read_timeout) + backoff


class Deadline:
    """A point on the monotonic clock by which a provider call has ended, whatever the provider does.

    `cancel()` ends it early: requests in flight under it are cut at once (their sockets shut down) and no
    new attempt starts. `child()` shares the end point but is cancelled on its own (one fan-out round).
    """

    __slots__ = ("_attempts", "_cancelled", "_lock", "at", "seconds")

    def __init__(self, seconds: float, at: float | None = None) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds if at is None else at
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._attempts: set[_Attempt] = set()

    def child(self) -> Deadline:
        return Deadline(self.seconds, self.at)

    def remaining(self) -> float:
        return 0.0 if self._cancelled.is_set() else self.at - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            attempts = list(self._attempts)
        for attempt in attempts:
            attempt.expire()

    def sleep(self, seconds: float) -> bool:
        """Sleep `seconds`, never past the end: True if all of it was slept, False if cancelled or cut at the end."""
        left = self.at - time.monotonic()
        return not self._cancelled.wait(max(0.0, min(seconds, left))) and seconds <= left

    def _track(self, attempt: _Attempt) -> None:
        with self._lock:
            self._attempts.add(attempt)
        if self._cancelled.is_set():
            attempt.expire()

    def _untrack(self, attempt: _Attempt) -> None:
        with self._lock:
            self._attempts.discard(attempt)


_DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("provider_deadline", default=None)


@contextlib.contextmanager
def deadline_scope(deadline: Deadline) -> Iterator[Deadline]:
    """Every request sent inside (in this thread, or a thread started with a copy of this context) shares it."""
    token = _DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _DEADLINE.reset(token)


def current_deadline() -> Deadline | None:
    return _DEADLINE.get()


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The decoded JSON body; ValueError if it is not JSON (callers turn that into ProviderError)."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except RecursionError:  # absurd nesting is "not JSON we can read", not a crash
            raise ValueError("JSON nested too deeply") from None


# ---- one attempt's watchdog ------------------------------------------------------------------------
class _Attempt:
    """The sockets one attempt uses, shut down when its time is up: a blocked recv() returns at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends_at = time.monotonic() + seconds
        self.expired = False
        self.finished = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        _WATCHDOG.watch(self)

    def cancel(self) -> None:
        with self._lock:
            self.finished = True  # the watchdog drops it; an expiry after this touches no socket

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            late = self.expired
        if late:
            _shutdown(sock)

    def expire(self) -> None:
        with self._lock:
            if self.finished:
                return
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


class _Watchdog:
    """One daemon thread expiring every attempt at its end, earliest first. (A timer thread per attempt cost about
    a third of a millisecond per request.) Finished attempts are dropped when they reach the front."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, _Attempt]] = []
        self._order = itertools.count()  # ties never compare attempts
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, attempt: _Attempt) -> None:
        with self._changed:
            heapq.heappush(self._due, (attempt.ends_at, next(self._order), attempt))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="http-watchdog", daemon=True)
                self._thread.start()
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while True:
                    while self._due and self._due[0][2].finished:
                        heapq.heappop(self._due)
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    if wait is not None and wait <= 0:
                        attempt = heapq.heappop(self._due)[2]
                        break
                    self._changed.wait(wait)
            attempt.expire()


_WATCHDOG = _Watchdog()


def _shutdown(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for an SSLSocket: its own shutdown() would unwrap TLS under a reader.
    # A socket already closed or never connected raises OSError (nothing else), and then has nothing to cut.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_ATTEMPT: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar("http_attempt", default=None)
_resolver: ThreadPoolExecutor | None = None
_resolver_lock = threading.Lock()


def _resolve(host: str, port: int, seconds: float) -> list[tuple[Any, ...]]:
    """getaddrinfo, waited for at most `seconds`. A hung lookup keeps one of DNS_WORKERS threads, never the call."""
    global _resolver
    with _resolver_lock:
        if _resolver is None:
            _resolver = ThreadPoolExecutor(max_workers=DNS_WORKERS)
    future = _resolver.submit(socket.getaddrinfo, host, port, allowed_gai_family(), socket.SOCK_STREAM)
    try:
        return future.result(timeout=max(seconds, 0.0))
    except FutureTimeout:
        future.cancel()
        raise


class _DeadlineConnectionMixin:
    """urllib3's connection, with DNS bounded and every socket it uses handed to the attempt's watchdog."""

    def _new_conn(self) -> socket.socket:
        attempt = _ATTEMPT.get()
        host = self._dns_host  # type: ignore[attr-defined]
        if attempt is None or is_ipaddress(host):  # an IP literal needs no DNS, nor a resolver thread that may be busy
            sock = super()._new_conn()  # type: ignore[misc]
        else:
            try:
                addresses = _resolve(host, self.port, min(self.timeout or attempt.seconds, attempt.seconds))  # type: ignore[attr-defined]
            except FutureTimeout:
                raise ConnectTimeoutError(self, f"resolving {host} timed out") from None
            except socket.gaierror as exc:
                raise NewConnectionError(self, f"cannot resolve the provider's host ({exc.strerror})") from exc
            sock = self._connect_any(host, addresses, attempt)
        if attempt is not None:
            attempt.watch(sock)
        return sock

    def _connect_any(self, host: str, addresses: list[tuple[Any, ...]], attempt: _Attempt) -> socket.socket:
        """The first address that connects (create_connection's own loop, on already resolved addresses), all of
        them within what is left of the attempt."""
        timeout = self.timeout  # type: ignore[has-type]
        error: Exception | None = None
        for _, _, _, _, sockaddr in addresses:
            left = attempt.ends_at - time.monotonic()
            if left <= 0:
                break
            self._dns_host = sockaddr[0]  # an IP literal: urllib3 resolves it without DNS
            self.timeout = left if timeout is None else min(timeout, left)
            try:
                return super()._new_conn()  # type: ignore[misc]
            except (ConnectTimeoutError, NewConnectionError) as exc:
                error = exc
            finally:
                self._dns_host = host
                self.timeout = timeout
        raise error or ConnectTimeoutError(self, f"connecting to {host} timed out")

    def request(self, *args: Any, **kwargs: Any) -> None:
        # The socket the request goes out on: a reused connection's, or over TLS the wrapped one (urllib3 connects
        # an HTTPS connection before its request). A new plain one connects later, inside, and _new_conn watches it,
        # as it watches the plain socket under a TLS handshake.
        attempt = _ATTEMPT.get()
        if attempt is not None:
            attempt.watch(self.sock)  # type: ignore[attr-defined]
        super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_DeadlineConnectionMixin, HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnectionMixin, HTTPSConnection):
    pass


class _HTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_pool: urllib3.PoolManager | None = None


def pool_manager() -> urllib3.PoolManager:
    global _pool
    if _pool is None:
        pool = urllib3.PoolManager(
            num_pools=8,
            maxsize=10,  # connections kept per provider host: the fan-out width
            cert_reqs="CERT_REQUIRED",
            ssl_minimum_version=ssl.TLSVersion.TLSv1_2,
        )
        pool.pool_classes_by_scheme = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}
        _pool = pool
    return _pool


class _Retryable(Exception):
    def __init__(self, error: Exception, retry_after: float | None = None) -> None:
        self.error = error
        self.retry_after = retry_after


class HttpClient:
    """Sends one request for one provider and returns the raw response, or raises a typed error.

    429 and 5xx (after retries) raise ProviderUnavailable; every other status is returned for the
    provider's parser to read (providers put their error codes in 4xx bodies).
    """

    def __init__(self, provider: str, settings: HttpSettings | None = None, pool: urllib3.PoolManager | None = None) -> None:
        self.provider = provider
        self.settings = settings or HttpSettings()
        self._pool = pool

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        deadline: Deadline | None = None,
    ) -> HttpResponse:
        """Within `deadline`, else the one in scope (`deadline_scope`), else this call's own `settings.budget()`."""
        deadline = deadline or current_deadline() or Deadline(self.settings.budget())
        error: Exception | None = None
        for attempt in range(self.settings.retries + 1):
            if attempt:
                assert isinstance(error, _Retryable)
                pause = self._pause(attempt, error.retry_after)
                if pause + MIN_ATTEMPT_SECONDS > deadline.remaining() or not deadline.sleep(pause):
                    break  # no time left for another attempt (or the call was cancelled): the last failure is the answer
            try:
                return self._attempt(method, url, headers, body, deadline)
            except _Retryable as retryable:
                error = retryable
        assert isinstance(error, _Retryable)
        raise error.error

    def _pause(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter (spreads retries of many callers), at least what the provider asked for."""
        backoff = random.uniform(0, min(self.settings.backoff_max, self.settings.backoff_factor * 2 ** (attempt - 1)))  # noqa: S311 - jitter, not a secret
        return max(backoff, retry_after or 0.0)

    def _attempt(self, method: str, url: str, headers: dict[str, str] | None, body: bytes | None, deadline: Deadline) -> HttpResponse:
        settings = self.settings
        left = deadline.remaining()
        if left < MIN_ATTEMPT_SECONDS:
            raise self._timeout(deadline)
        seconds = min(left, settings.connect_timeout + settings.read_timeout)
        attempt = _Attempt(seconds)
        token = _ATTEMPT.set(attempt)
        deadline._track(attempt)
        attempt.start()
        response: urllib3.BaseHTTPResponse | None = None
        try:
            response = (self._pool or pool_manager()).request(
                method,
                url,
                headers=headers,
                body=body,
                timeout=urllib3.Timeout(connect=min(settings.connect_timeout, seconds), read=min(settings.read_timeout, seconds)),
                retries=False,  # retried here, where the deadline is known
                redirect=False,
                preload_content=False,
            )
            if response.status in RETRY_STATUSES:
                _discard(response)  # the body of a 5xx is never read: it may be huge or endless
                raise _Retryable(
                    ProviderUnavailable(self.provider, f"{self.provider} answered HTTP {response.status}", http_status=response.status),
                    _retry_after(response.headers.get("Retry-After")),
                )
            data = self._read_body(response, attempt)
            if attempt.expired:  # the watchdog cut the body short: what was read is not the answer
                _discard(response)
                raise ProviderTimeout(self.provider, f"{self.provider} did not finish its answer within {seconds:.3g}s")
            response.release_conn()
            return HttpResponse(response.status, {k.lower(): v for k, v in response.headers.items()}, data)
        except (_Retryable, ProviderError):
            raise
        except (HTTPError, HTTPException, OSError) as exc:
            if response is not None:
                _discard(response)
            raise self._failure(exc, attempt, seconds) from exc
        finally:
            attempt.cancel()
            deadline._untrack(attempt)
            _ATTEMPT.reset(token)

    def _read_body(self, response: urllib3.BaseHTTPResponse, attempt: _Attempt) -> bytes:
        """The body, capped at max_body_bytes (a larger one is refused, and the connection dropped)."""
        cap = self.settings.max_body_bytes
        declared = response.headers.get("Content-Length", "")
        too_big = ProviderError(self.provider, f"{self.provider} answered with a body over {cap} bytes", http_status=response.status)
        if declared.isdigit() and int(declared) > cap:
            _discard(response)
            raise too_big
        chunks: list[bytes] = []
        size = 0
        while not attempt.expired:
            chunk = response.read1(64 * 1024)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                _discard(response)
                raise too_big
        return b"".join(chunks)

    def _failure(self, exc: BaseException, attempt: _Attempt, seconds: float) -> Exception:
        """The typed error for a failed attempt; a _Retryable wraps the ones worth another attempt."""
        if attempt.expired:
            return ProviderTimeout(self.provider, f"{self.provider} did not finish its answer within {seconds:.3g}s")
        if isinstance(exc, ReadTimeoutError):
            return ProviderTimeout(self.provider, f"{self.provider} did not answer within {self.settings.read_timeout:g}s")
        # NewConnectionError subclasses ConnectTimeoutError for history's sake: a refusal is not a timeout.
        if isinstance(exc, Urllib3TimeoutError) and not isinstance(exc, NewConnectionError):
            return _Retryable(ProviderTimeout(self.provider, f"{self.provider} did not answer in time ({type(exc).__name__})"))
        if isinstance(exc, SSLError):  # a certificate will not change between attempts
            return ProviderUnavailable(self.provider, f"cannot reach {self.provider} (SSLError)")
        if isinstance(exc, ProtocolError):
            return _Retryable(ProviderUnavailable(self.provider, f"connection to {self.provider} was broken"))
        return _Retryable(ProviderUnavailable(self.provider, f"cannot reach {self.provider} ({type(exc).__name__})"))

    def _timeout(self, deadline: Deadline) -> ProviderTimeout:
        return ProviderTimeout(self.provider, f"{self.provider} did not answer within the {deadline.seconds:g}s deadline")


def _discard(response: urllib3.BaseHTTPResponse) -> None:
    """Drop the connection instead of draining it back into the pool (its remaining body is not wanted): urllib3's
    close() closes the connection with the body, and release_conn() gives the pool back its (emptied) slot."""
    with contextlib.suppress(Exception):  # a connection in an odd state must not hide the failure being reported
        response.close()
        response.release_conn()


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime  # rare (a dated Retry-After): kept out of the cold import

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())

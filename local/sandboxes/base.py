"""What the three provider sandboxes share: a threaded HTTP server on 127.0.0.1, seeded messages whose
status progresses over (controllable) time, fault injection, and request statistics.

A provider sandbox subclasses `Sandbox` and implements `handle(request) -> Reply` with the provider's
documented paths, auth and bodies. Tests drive it in-process (`seed`, `inject`, `clock.advance`,
`max_in_flight`); `make run` and subprocess tests drive it over HTTP under `/_sandbox/` (see `_control`).
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class Fault(StrEnum):
    TIMEOUT = "timeout"  # accept the request, never answer (until the server stops or `hang` passes)
    SERVER_ERROR = "server_error"  # HTTP 500
    UNAVAILABLE = "unavailable"  # HTTP 503
    RATE_LIMIT = "rate_limit"  # HTTP 429
    RESET = "reset"  # TCP reset instead of an answer
    MALFORMED = "malformed"  # a truncated body in the provider's content type, HTTP 200
    HTML = "html"  # an HTML error page from a proxy, HTTP 200
    ENTITY_BOMB = "entity_bomb"  # "billion laughs" XML, HTTP 200
    EXTERNAL_ENTITY = "external_entity"  # XML with an external entity (XXE), HTTP 200
    TRICKLE = "trickle"  # HTTP 200 whose body arrives one byte every 0.1 s (each read is quick, the whole is not)
    SLOW_HEADERS = "slow_headers"  # the status line and headers arrive one byte every 0.1 s
    HUGE_ERROR = "huge_error"  # HTTP 500 declaring a 1 GiB body, sent 64 KiB every 10 ms for as long as it is read
    DEEP_NESTING = "deep_nesting"  # HTTP 200, the provider's content type nested 100 000 levels deep
    NOT_UTF8 = "not_utf8"  # HTTP 200, bytes that are not UTF-8 in the provider's content type


ENTITY_BOMB_BODY = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + b"".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode() for i in range(1, 10))
    + b']>\n<response version="3.0" protocol="wmp" type="query"><error code="0" description="&lol9;"/></response>\n'
)
EXTERNAL_ENTITY_BODY = (
    b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<response version="3.0" protocol="wmp" type="query"><error code="0" description="&xxe;"/></response>\n'
)
MAX_RECORDED_REQUESTS = 10_000  # requests kept for inspection; the oldest half goes when it is reached
NESTING_DEPTH = 100_000
NOT_UTF8_BODY = b"\xff\xfe\x00\xc3\x28 \xa0\xa1"
HTML_BODY = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"


class Clock:
    """Wall time plus an offset that tests move forward, so statuses progress without sleeping."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str
    byte_interval: float = 0.0  # > 0: the body is written one byte at a time, this many seconds apart
    header_interval: float = 0.0  # > 0: the status line and headers too
    repeat: int = 1  # the body is sent this many times over (Content-Length counts them all)
    repeat_interval: float = 0.0  # seconds between two repeats
    headers: tuple[tuple[str, str], ...] = ()  # more response headers (e.g. Retry-After)

    @classmethod
    def json(cls, status: int, payload: Any) -> Reply:
        return cls(status, json.dumps(payload).encode(), "application/json")


@dataclass
class SeededMessage:
    """A message the sandbox knows. `steps` are (seconds after creation, provider state) pairs in order;
    the state at a moment is the last step whose time has come. `fields` holds provider-specific data."""

    id: str
    steps: list[tuple[float, Any]]
    created_at: float
    fields: dict[str, Any] = field(default_factory=dict)

    def state(self, now: float) -> Any:
        current = self.steps[0][1]
        for offset, value in self.steps:
            if now - self.created_at >= offset:
                current = value
        return current

    def step_time(self, now: float, value: Any) -> float | None:
        """When the message reached `value` (epoch seconds), if it has."""
        for offset, step in self.steps:
            if step == value and now - self.created_at >= offset:
                return self.created_at + offset
        return None


@dataclass
class _Injection:
    fault: Fault
    remaining: int | None  # None: every matching request
    match: Callable[[Request], bool] | None


class Sandbox:
    name = "sandbox"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, latency: float = 0.0, hang: float = 60.0) -> None:
        self.host = host
        self.port = port
        self.latency = latency  # seconds added to every provider request
        self.hang = hang  # how long a TIMEOUT fault holds the connection at most
        self.clock = Clock()
        self.messages: dict[str, SeededMessage] = {}
        self.requests: list[Request] = []
        self._faults: list[_Injection] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Sandbox:
        self._server = _Server((self.host, self.port), _Handler)
        self._server.sandbox = self
        self.port = self._server.server_address[1]
        # A short poll interval: stop() waits for serve_forever to notice, 0.5 s by default.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"{self.name}-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- test controls ---------------------------------------------------------------------------
    def add_message(self, message_id: str, steps: list[tuple[float, Any]], **fields: Any) -> SeededMessage:
        message = SeededMessage(id=message_id, steps=list(steps), created_at=self.clock.now(), fields=fields)
        with self._lock:
            self.messages[message_id] = message
        return message

    def inject(self, fault: Fault | str, *, times: int | None = 1, match: Callable[[Request], bool] | None = None) -> None:
        """Make the next `times` provider requests (None: all) that satisfy `match` fail with `fault`."""
        with self._lock:
            self._faults.append(_Injection(Fault(fault), times, match))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset_stats(self) -> None:
        with self._lock:
            self.requests.clear()
            self.max_in_flight = 0

    # ---- provider behaviour (subclasses) ---------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def malformed_body(self) -> Reply:
        return Reply(200, b"{", "application/json")

    def content_type(self) -> str:
        """What the provider's answers are (the fault bodies below use it)."""
        return "application/json"

    def deeply_nested_body(self) -> Reply:
        return Reply(200, b"[" * NESTING_DEPTH + b"]" * NESTING_DEPTH, self.content_type())

    def seed_from_json(self, payload: dict[str, Any]) -> None:
        """`POST /_sandbox/messages` body: {"id": ..., "steps": [[seconds, state], ...], ...fields}."""
        steps = [(float(offset), value) for offset, value in payload["steps"]]
        self.add_message(str(payload["id"]), steps, **{k: v for k, v in payload.items() if k not in ("id", "steps")})

    # ---- request path ----------------------------------------------------------------------------
    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for injection in self._faults:
                if injection.match is None or injection.match(request):
                    if injection.remaining is not None:
                        injection.remaining -= 1
                        if injection.remaining <= 0:
                            self._faults.remove(injection)
                    return injection.fault
        return None

    def _serve(self, request: Request) -> Reply | None:
        """Returns the reply, or None when the connection must be dropped without one."""
        if request.path.startswith("/_sandbox/"):
            return self._control(request)
        with self._lock:
            self.requests.append(request)
            if len(self.requests) > MAX_RECORDED_REQUESTS:  # a long `make run` must not grow without bound
                del self.requests[: MAX_RECORDED_REQUESTS // 2]
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.latency:
                self._stopping.wait(self.latency)
            fault = self._take_fault(request)
            if fault is None:
                return self.handle(request)
            return self._fault_reply(fault)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _fault_reply(self, fault: Fault) -> Reply | None:
        match fault:
            case Fault.TIMEOUT:
                self._stopping.wait(self.hang)
                return None
            case Fault.RESET:
                return None
            case Fault.SERVER_ERROR:
                return Reply(500, b"Internal Server Error", "text/plain")
            case Fault.UNAVAILABLE:
                return Reply(503, b"Service Unavailable", "text/plain")
            case Fault.RATE_LIMIT:
                return Reply(429, b"Too Many Requests", "text/plain")
            case Fault.MALFORMED:
                return self.malformed_body()
            case Fault.HTML:
                return Reply(200, HTML_BODY, "text/html")
            case Fault.ENTITY_BOMB:
                return Reply(200, ENTITY_BOMB_BODY, "text/xml")
            case Fault.EXTERNAL_ENTITY:
                return Reply(200, EXTERNAL_ENTITY_BODY, "text/xml")
            case Fault.TRICKLE:
                return Reply(200, b'{"result": true, "data": {}}' + b" " * 200, "application/json", byte_interval=0.1)
            case Fault.SLOW_HEADERS:
                return Reply(200, b"{}", self.content_type(), header_interval=0.1)
            case Fault.HUGE_ERROR:
                return Reply(500, b"x" * 65536, "text/plain", repeat=16384, repeat_interval=0.01)
            case Fault.DEEP_NESTING:
                return self.deeply_nested_body()
            case Fault.NOT_UTF8:
                return Reply(200, NOT_UTF8_BODY, self.content_type())

    def _control(self, request: Request) -> Reply:
        """HTTP controls for `make run` and subprocess tests (same operations as the methods above)."""
        try:
            payload = json.loads(request.body or b"{}")
            match request.method, request.path:
                case "POST", "/_sandbox/messages":
                    for item in payload if isinstance(payload, list) else [payload]:
                        self.seed_from_json(item)
                case "POST", "/_sandbox/faults":
                    self.inject(payload["fault"], times=payload.get("times", 1))
                case "POST", "/_sandbox/clock":
                    self.clock.advance(float(payload["advance"]))
                case "POST", "/_sandbox/reset":
                    self.clear_faults()
                    self.reset_stats()
                case "GET", "/_sandbox/stats":
                    pass
                case _:
                    return Reply.json(404, {"error": "unknown sandbox control"})
        except (ValueError, KeyError, TypeError) as exc:
            return Reply.json(400, {"error": f"bad sandbox control: {exc}"})
        return Reply.json(200, {"max_in_flight": self.max_in_flight, "requests": len(self.requests), "messages": len(self.messages)})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    sandbox: Sandbox

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops a connection (a cut fault answer, an unread error body) is expected, not news.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: without this, +40 ms each
    server: _Server

    def log_message(self, template: str, *args: Any) -> None:  # quiet: tests read stats, not logs
        pass

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        request = Request(self.command, url.path, url.query, {k.lower(): v for k, v in self.headers.items()}, body)
        reply = self.server.sandbox._serve(request)
        if reply is None:
            # RST instead of FIN: the client sees "connection reset by peer".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        try:
            self._write(reply)
        except OSError:  # the client went away (a cut fault body): nothing to answer any more
            self.close_connection = True

    def _write(self, reply: Reply) -> None:
        stopping = self.server.sandbox._stopping
        if reply.header_interval:
            head = (
                f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('',))[0]}\r\n"
                f"Content-Type: {reply.content_type}\r\nContent-Length: {len(reply.body)}\r\n\r\n"
            ).encode()
            for index in range(len(head)):
                if stopping.wait(reply.header_interval):
                    return
                self.wfile.write(head[index : index + 1])
                self.wfile.flush()
            self.wfile.write(reply.body)
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body) * reply.repeat))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        if reply.repeat > 1:
            for _ in range(reply.repeat):
                if stopping.wait(reply.repeat_interval):
                    return
                self.wfile.write(reply.body)
            return
        if not reply.byte_interval:
            self.wfile.write(reply.body)
            return
        for index in range(len(reply.body)):
            if stopping.wait(reply.byte_interval):
                return
            self.wfile.write(reply.body[index : index + 1])
            self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

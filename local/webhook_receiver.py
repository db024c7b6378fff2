"""`python3 -m local.webhook_receiver`: a webhook endpoint on 127.0.0.1 that prints what it receives.

It does what docs/webhooks.md asks of a consumer: it checks the shared secret in constant time (401 without it),
and drops a duplicate `event_id` (answering 200, so it is not sent again). For the tour and the tests.

    WEBHOOK_SECRET=local-demo-secret python3 -m local.webhook_receiver            # port 9000
    python3 -m local.webhook_receiver --port 9100 --fail-first 1                  # answers 500 once: watch the retry

Settings: WEBHOOK_SECRET (none: every request is accepted, and it says so), WEBHOOK_AUTH_HEADER (X-Webhook-Secret).
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_PORT = 9000
DEFAULT_HEADER = "X-Webhook-Secret"
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what this receiver answered (0: it never answered)

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """`answers`: what to answer the next requests, in order (an HTTP status, or "hang": answer nothing for
    `hang_seconds`); afterwards 200 for an accepted event."""

    def __init__(
        self,
        port: int = 0,
        secret: str | None = None,
        header: str = DEFAULT_HEADER,
        log: Callable[[str], None] | None = None,
        hang_seconds: float = 30.0,
    ) -> None:
        self.secret = secret
        self.header = header
        self.log = log or (lambda line: None)
        self.hang_seconds = hang_seconds
        self.answers: list[int | str] = []
        self.requests: list[Received] = []
        self.accepted: dict[str, Any] = {}  # event_id -> detail, each once
        self.open_requests = 0  # requests being answered right now (a hung one stays open)
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()  # hung requests end now
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, headers: dict[str, str], body: bytes) -> int | str:
        """The status for one request (or "hang"); records it as accepted when it is."""
        with self._lock:
            scripted = self.answers.pop(0) if self.answers else None
        if scripted is not None:
            self.log(f"[receiver] answered {scripted} (scripted)")
            return scripted
        if self.secret is not None:
            given = next((value for name, value in headers.items() if name.lower() == self.header.lower()), "")
            # Constant time: a wrong guess learns nothing from how long the comparison took.
            if not hmac.compare_digest(given.encode(), self.secret.encode()):
                return 401
        try:
            detail = json.loads(body)
            event_id = detail["event_id"]
        except (ValueError, KeyError, TypeError):
            return 400
        with self._lock:
            duplicate = event_id in self.accepted
            self.accepted.setdefault(event_id, detail)
        self.log(describe(detail, duplicate))
        return 200

    def record(self, request: Received) -> None:
        with self._lock:
            self.requests.append(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, MAX_BODY))
                headers = dict(self.headers.items())
                with receiver._lock:
                    receiver.open_requests += 1
                try:
                    status = receiver.answer(headers, body)
                    # Recorded before it is answered: whoever saw the answer (or the accepted event) finds the request.
                    receiver.record(Received(self.command, self.path, headers, body, 0 if status == "hang" else int(status)))
                    if status == "hang":
                        receiver._released.wait(receiver.hang_seconds)
                        self.close_connection = True
                        return
                    self.send_response(int(status))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                finally:
                    with receiver._lock:
                        receiver.open_requests -= 1

        return Handler


def describe(detail: Any, duplicate: bool = False) -> str:
    report = detail.get("report") if isinstance(detail, dict) and isinstance(detail.get("report"), dict) else {}
    head = f"[receiver] {detail.get('event_id')}"
    if duplicate:
        return f"{head}: duplicate, dropped"
    final = " (final)" if report.get("final") else ""
    previous = detail.get("previous_status") or "(first answer)"
    return f"{head}: {report.get('provider')} {report.get('id')} {previous} -> {report.get('status')}{final}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m local.webhook_receiver", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})")
    parser.add_argument("--fail-first", type=int, default=0, metavar="N", help="answer 500 to the first N requests")
    args = parser.parse_args(argv)
    secret = os.environ.get("WEBHOOK_SECRET") or None
    header = os.environ.get("WEBHOOK_AUTH_HEADER") or DEFAULT_HEADER
    try:
        receiver = WebhookReceiver(args.port, secret, header, log=lambda line: print(line, flush=True))
    except OSError as exc:
        print(f"webhook_receiver: cannot listen on 127.0.0.1:{args.port} ({exc.strerror}); use --port", file=sys.stderr)
        return 2
    receiver.answers = [500] * args.fail_first
    receiver.start()
    check = f"checks {header}" if secret else f"WEBHOOK_SECRET not set: {header} is NOT checked"
    print(f"webhook receiver on {receiver.url} ({check}); Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

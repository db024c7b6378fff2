"""The Secrets Manager endpoint of AWS's Parameters and Secrets Lambda Extension, served on 127.0.0.1 from a
Secrets Manager client (moto's, in-process or over HTTP), so the local run, the tests and the bench read secrets
the way the deployed functions do (`sms_status.credentials`).

What it answers, as the extension does:
- `GET /secretsmanager/get?secretId=<name or ARN>` with the header X-Aws-Parameters-Secrets-Token holding the
  caller's session token: 200 and GetSecretValue's answer as JSON;
- a missing or wrong token: 401; a request relayed through a proxy (X-Forwarded-For): 400;
- a secret Secrets Manager refuses: its HTTP status (400 for ResourceNotFoundException) and error type;
- anything else: 404.
No cache (the functions run with the extension's cache off: credentials.py keeps the one cache).
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sms_status.credentials import TOKEN_HEADER  # one spelling of the header

PATH = "/secretsmanager/get"


def _moto_client() -> Any:
    import boto3

    from local.template import REGION

    return boto3.client("secretsmanager", region_name=REGION)


class SecretsExtension:
    """Started with `start()` (or as a context manager) on an ephemeral port unless one is given; `port` is where.
    `token` tells whether a request's session token is one it serves (a caller's AWS_SESSION_TOKEN), or is that
    token. `client()` makes the Secrets Manager client it reads from (built once, on the first request)."""

    def __init__(self, token: Callable[[str], bool] | str, client: Callable[[], Any] = _moto_client, port: int = 0) -> None:
        self._accepts = token if callable(token) else lambda given: bool(token) and hmac.compare_digest(given.encode(), token.encode())
        self._make_client = client
        self._client: Any = None
        self._client_lock = threading.Lock()
        self.requests = 0  # GetSecretValue calls made for callers (what the extension's cache would have saved)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SecretsExtension:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> SecretsExtension:
        self._thread = threading.Thread(target=self._server.serve_forever, name="secrets-extension", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def answer(self, path: str, headers: Any) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for one request."""
        parts = urlsplit(path)
        if parts.path != PATH:
            return 404, {"message": "not found"}
        if headers.get("X-Forwarded-For") is not None:
            return 400, {"message": "requests through a proxy are refused"}
        if not self._accepts(headers.get(TOKEN_HEADER) or ""):
            return 401, {"message": "the request does not carry the session token"}
        secret_id = (parse_qs(parts.query).get("secretId") or [""])[0]
        if not secret_id:
            return 400, {"message": "secretId is required"}
        from botocore.exceptions import ClientError

        self.requests += 1
        try:
            value = self.client().get_secret_value(SecretId=secret_id)
        except ClientError as error:
            # Secrets Manager answers its client errors with 400 (moto says 404 for a missing secret); 5xx pass on.
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            status = status if status >= 500 else 400
            code = error.response.get("Error", {}).get("Code", "")
            return status, {"__type": code, "message": f"GetSecretValue failed: {code}"}
        value.pop("ResponseMetadata", None)
        value["CreatedDate"] = (
            value["CreatedDate"].timestamp() if hasattr(value.get("CreatedDate"), "timestamp") else value.get("CreatedDate")
        )
        return 200, value

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        extension = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = extension.answer(self.path, self.headers)
                data = json.dumps(body, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass  # the request line carries secret names: keep the console quiet

        return Handler

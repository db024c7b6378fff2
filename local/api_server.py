"""The HTTP API on 127.0.0.1, served from api/openapi.yaml as API Gateway would.

- `aws_proxy` operations (every route) become API Gateway REST proxy events (v1: resource, path,
  pathParameters, requestContext with a request id, body) for the real handler the integration URI names.
  As in API Gateway REST, `path` and `pathParameters` stay percent-encoded (the handlers decode them), and a
  body that is not UTF-8 arrives base64-encoded.
- Anything else is the pinned error JSON, whatever the method: 404 for an unknown path, 405 (with `Allow`) for a
  method the path does not have. (Deployed, API Gateway answers the latter 403 "Missing Authentication Token".)
- Only loopback may talk to it: a Host header other than 127.0.0.1, localhost or [::1] (any port) is refused,
  so a web page cannot reach it through DNS rebinding. Content-Length is checked before anything is read:
  not a number, negative, or a chunked body is 400; more than API Gateway's 10 MB is 413.
Local mode does not check SigV4: every request is accepted unsigned. It does name the caller as API Gateway's
IAM authorization would (`requestContext.identity`), so the handlers' per-caller rules run unchanged: the access
key id of a SigV4 `Authorization` header (`AWS4-HMAC-SHA256 Credential=<key id>/...`) when one is sent, else one
local caller (`local_identity`).

Local-only controls live under /_local/ (not part of the API): enqueue a tracking message, read the
captured change events, queue depths with each queue's poller counters (batches, throttled batches ...),
each function's invocations and throttles, delivery analytics, health.

A function refused for its reserved concurrency (Lambda's 429 TooManyRequestsException) answers 500
"Internal server error", as API Gateway answers any refused Lambda invocation (the gateway responses only give
it the error JSON); the function counts the throttle (`GET /_local/functions`).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.lambda_runtime import FunctionThrottled
from local.stack import LocalAws
from local.template import ACCOUNT, OPENAPI, load_yaml

HTTP_METHODS = ("get", "post", "put", "delete", "patch", "head", "options")
MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit: a larger request is 413 there too
LOOPBACK_HOST = re.compile(r"(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?", re.IGNORECASE)
SIGV4_CREDENTIAL = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([A-Za-z0-9]{1,128})/")
LOCAL_CALLER = "local"  # the one caller of unsigned local requests


def local_identity(headers: dict[str, str], user_agent: str | None = None) -> dict[str, Any]:
    """`requestContext.identity` as API Gateway fills it for a request its AWS_IAM authorizer let through: the
    access key id, the caller's principal id (`caller`) and ARN (`userArn`), here all made from the key id of a
    SigV4 Authorization header (its signature is not checked), or from LOCAL_CALLER when there is none."""
    authorization = next((value for name, value in headers.items() if name.lower() == "authorization"), "")
    found = SIGV4_CREDENTIAL.match(authorization.strip())
    key_id = found.group(1) if found else None
    principal = key_id or LOCAL_CALLER
    return {
        "sourceIp": "127.0.0.1",
        "userAgent": user_agent,
        "accountId": ACCOUNT,
        "accessKey": key_id,
        "caller": principal,
        "user": principal,
        "userArn": f"arn:aws:iam::{ACCOUNT}:user/{principal}",
    }


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The pinned error JSON."""
    return {"error": {"code": code, "message": message, "details": details}}


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # OpenAPI path, e.g. /wooxy/messages/{id}
    pattern: re.Pattern[str]
    target: str  # the function's logical id

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        return self.path_params(path)

    def path_params(self, path: str) -> dict[str, str] | None:
        """The path parameters, still percent-encoded, as API Gateway REST passes them."""
        found = self.pattern.fullmatch(path)
        return None if found is None else found.groupdict()


def compile_path(resource: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", resource)
    regex = "".join(f"(?P<{part[1:-1].rstrip('+')}>[^/]+)" if part.startswith("{") else re.escape(part) for part in parts)
    return re.compile(regex)


def load_routes(aws: LocalAws, openapi: dict[str, Any]) -> tuple[list[Route], list[str]]:
    """Every operation of the OpenAPI document that the local stack can serve, plus notes on the others."""
    routes: list[Route] = []
    notes: list[str] = []
    for resource, operations in (openapi.get("paths") or {}).items():
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            integration = operation.get("x-amazon-apigateway-integration") or {}
            target = aws.api_target(integration)
            if target is None:
                notes.append(f"{method.upper()} {resource}: its integration has no local target; answers 404 locally")
                continue
            routes.append(Route(method.upper(), resource, compile_path(resource), target))
    # Literal segments win over parameters, as in API Gateway (e.g. /wooxy/status/bulk before /wooxy/status/{x}).
    routes.sort(key=lambda route: (route.resource.count("{"), -len(route.resource)))
    return routes, notes


def proxy_event(
    route: Route, path_params: dict[str, str], method: str, path: str, query: str, headers: dict[str, str], body: bytes, stage: str
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event, as Lambda receives it."""
    now = datetime.now(UTC)
    multi_query = {name: values for name, values in parse_qs(query, keep_blank_values=True).items()}
    try:
        text_body: str | None = body.decode("utf-8") if body else None
        is_base64 = False
    except UnicodeDecodeError:
        text_body, is_base64 = base64.b64encode(body).decode(), True
    request_id = str(uuid.uuid4())
    return {
        "resource": route.resource,
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {name: [value] for name, value in headers.items()} or None,
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": route.resource,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": "local",
            "domainName": headers.get("Host", "127.0.0.1"),
            "requestId": request_id,
            "apiId": "local",
            "identity": local_identity(headers, headers.get("User-Agent")),
        },
        "body": text_body,
        "isBase64Encoded": is_base64,
    }


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    @classmethod
    def json(cls, status: int, payload: Any) -> Answer:
        return cls(status, json.dumps(payload, allow_nan=False).encode(), {"Content-Type": "application/json"})


def gateway_error(status: int, message: str, response_type: str) -> Answer:
    """What the OpenAPI document's gateway responses (DEFAULT_4XX / DEFAULT_5XX) make of API Gateway's own errors."""
    code = "invalid_request" if status < 500 else "internal_error"
    return Answer.json(status, error_body(code, message, {"gateway_response": response_type}))


# A results_url as the bulk function presigns it: AWS's S3, virtual-hosted (boto3's style for us-east-1).
AWS_S3_URL = re.compile(rb"https://([a-z0-9][a-z0-9.-]*)\.s3\.amazonaws\.com/")


def local_s3_urls(body: bytes, endpoint: str | None) -> bytes:
    """The bulk routes' results_url pointed at moto's endpoint on 127.0.0.1 (path-style), which serves the same
    bucket; moto checks no signature. Without the endpoint (moto[server] not installed) the URL is left as signed."""
    if endpoint is None:
        return body
    return AWS_S3_URL.sub(lambda found: endpoint.encode() + b"/" + found.group(1) + b"/", body)


def proxy_answer(result: Any) -> Answer:
    """A Lambda proxy response, or API Gateway's 502 when the function answered something else."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        return gateway_error(502, "Internal server error", "INTEGRATION_FAILURE")
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name)] = ", ".join(str(v) for v in values)
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return Answer(result["statusCode"], raw, headers)


class ApiServer:
    """ThreadingHTTPServer on 127.0.0.1 answering the OpenAPI routes with the local stack."""

    def __init__(self, aws: LocalAws, port: int, *, stage: str = "v1", log: Callable[[str], None] = print) -> None:
        self.aws = aws
        self.port = port
        self.stage = stage
        self.log = log
        self.routes, self.notes = load_routes(aws, load_yaml(OPENAPI))
        self.change_events: deque[dict[str, Any]] = deque(maxlen=200)
        self.workers: list[Any] = []  # the queue pollers (local.queue_worker.QueueWorker), for their counters
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ApiServer:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.api = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="local-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ---- request handling ------------------------------------------------------------------------------------
    def answer(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Answer:
        url = urlsplit(raw_path)
        path = url.path
        if path.startswith("/_local/"):
            return self.control(method, path, body)
        for route in self.routes:
            params = route.match(method, path)
            if params is None:
                continue
            return self.call_function(route, params, method, path, url.query, headers, body)
        allowed = sorted({route.method for route in self.routes if route.path_params(path) is not None})
        if allowed:
            answer = Answer.json(405, error_body("invalid_request", f"{path} does not take {method}; it takes {', '.join(allowed)}"))
            answer.headers["Allow"] = ", ".join(allowed)
            return answer
        return Answer.json(404, error_body("invalid_request", f"no route {method} {path}"))

    def call_function(self, route: Route, params: dict[str, str], method: str, path: str, query: str, headers: dict[str, str], body: bytes):
        function = self.aws.functions[route.target]
        event = proxy_event(route, params, method, path, query, headers, body, self.stage)
        try:
            answer = proxy_answer(function.invoke(event))
            return replace(answer, body=local_s3_urls(answer.body, self.aws.endpoint_url))
        except FunctionThrottled:
            # Lambda refused the invocation (429 TooManyRequestsException). API Gateway does not pass that on: for
            # a Lambda integration every refused invocation is its own 500 "Internal server error", and the
            # gateway responses (DEFAULT_5XX) only reshape the body. 429 comes only from the stage's own throttle.
            self.log(f"[api] {function.short_name}: throttled (reserved concurrency {function.reserved_concurrency})")
            return gateway_error(500, "Internal server error", "INTEGRATION_FAILURE")
        except Exception as exc:  # a crashed function: API Gateway answers 502 and the function's log has the trace
            self.log(f"[api] {function.short_name}: function error {type(exc).__name__}")
            return gateway_error(502, "Internal server error", "INTEGRATION_FAILURE")

    def control(self, method: str, path: str, body: bytes) -> Answer:
        """Local-only helpers for the tour and the tests."""
        match method, path.rstrip("/").split("/")[2:]:
            case "GET", ["health"]:
                return Answer.json(200, {"ready": True, "routes": [f"{r.method} {r.resource}" for r in self.routes]})
            case "GET", ["events"]:
                return Answer.json(200, {"events": list(self.change_events)})
            case "GET", ["queues"]:
                return Answer.json(200, {"queues": self.queue_depths()})
            case "GET", ["functions"]:
                return Answer.json(200, {"functions": [function.stats() for function in self.aws.functions.values()]})
            case "GET", ["analytics"]:
                return Answer.json(200, self.analytics())
            case "POST", ["enqueue", provider]:
                return self.enqueue(provider, body)
        return Answer.json(404, error_body("invalid_request", f"no local control {method} {path}"))

    def enqueue(self, provider: str, body: bytes) -> Answer:
        mapping = self.aws.queue_for(provider)
        if mapping is None:
            return Answer.json(404, error_body("invalid_request", f"no tracking queue for {provider!r} in template.yaml"))
        try:
            message = json.loads(body)
        except ValueError:
            return Answer.json(400, error_body("invalid_request", 'the body must be the queue message JSON, e.g. {"ids": ["..."]}'))
        sent = self.aws.client("sqs").send_message(QueueUrl=mapping.queue_url, MessageBody=json.dumps(message))
        return Answer.json(202, {"queue_url": mapping.queue_url, "message_id": sent["MessageId"]})

    def analytics(self) -> dict[str, Any]:
        from local.analytics import delivery_analytics, tracked_messages
        from sms_status.store import StatusStore

        table = self.aws.tables.get("StatusTable")
        if table is None:
            return {"providers": {}, "note": "the template has no StatusTable"}
        return delivery_analytics(tracked_messages(StatusStore(self.aws.client("dynamodb"), table)))

    def queue_depths(self) -> list[dict[str, Any]]:
        sqs = self.aws.client("sqs")
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
            "VisibilityTimeout",
        ]
        depths = []
        consumers = {mapping.queue_url: mapping.function.short_name for mapping in self.aws.mappings}
        pollers = {worker.mapping.queue_url: worker.stats() for worker in self.workers}
        for logical, url in self.aws.queues.items():
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
            counts = {name: int(attributes.get(name, 0)) for name in names}
            depths.append({"queue": logical, "url": url, "consumer": consumers.get(url), **counts, "poller": pollers.get(url)})
        return depths


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    api: ApiServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Seconds a socket read or write may stall: a client that announces a body and never sends it (or sends it a
    # byte at a time) frees its thread instead of holding it forever. Not a limit on how long a route may work.
    timeout = 60
    server: _Server

    def log_message(self, template: str, *args: Any) -> None:
        pass  # one line per request below, without bodies

    def _refusal(self) -> tuple[int, str] | None:
        """Why this request is not read at all (status, message), or None."""
        host = self.headers.get("Host")
        if host is not None and not LOOPBACK_HOST.fullmatch(host.strip()):
            return 400, "the local API answers only Host 127.0.0.1, localhost or [::1]"
        if self.headers.get("Transfer-Encoding"):
            return 400, "send the body with a Content-Length (chunked bodies are not read locally)"
        raw = self.headers.get("Content-Length")
        if raw is not None and not re.fullmatch(r"[0-9]+", raw.strip()):  # not isdigit(): it takes "²", which int() refuses
            return 400, "Content-Length must be a non-negative integer"
        if raw is not None and int(raw) > MAX_BODY:
            return 413, f"the body is larger than {MAX_BODY} bytes"
        return None

    def _dispatch(self) -> None:
        started = time.monotonic()
        refusal = self._refusal()
        if refusal is not None:
            self.close_connection = True  # the body (if any) was not read: the connection cannot carry another request
            self._send(Answer.json(refusal[0], error_body("invalid_request", refusal[1])))
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name: value for name, value in self.headers.items()}
        try:
            answer = self.server.api.answer(self.command, self.path, headers, body)
        except Exception as exc:
            self.server.api.log(f"[api] {self.command} {urlsplit(self.path).path}: {type(exc).__name__}")
            answer = gateway_error(500, "Internal server error", "DEFAULT_5XX")
        self._send(answer)
        if not urlsplit(self.path).path.startswith("/_local/"):
            elapsed_ms = (time.monotonic() - started) * 1000
            self.server.api.log(f"[api] {self.command} {urlsplit(self.path).path} -> {answer.status} ({elapsed_ms:.0f} ms)")

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def __getattr__(self, name: str) -> Any:
        """`do_<METHOD>` for every method (TRACE, CONNECT, anything): the error JSON, not Python's HTML 501 page."""
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What http.server answers itself (a bad request line, headers too long): the error JSON too."""
        self.close_connection = True
        body = json.dumps(error_body("invalid_request" if code < 500 else "internal_error", message or "bad request")).encode()
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

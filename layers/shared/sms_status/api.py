"""The HTTP API (README "HTTP API"): the routes of each provider, on the small REST router of `rest.py`.

This is also the one place where domain errors become the pinned error JSON and status codes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .errors import InvalidRequest, ServiceError
from .lookup import KEY_FIELDS, KINDS, MAX_BATCH, Kind, StatusService, as_key
from .model import Provider, Report, Status, to_json
from .observability import logger
from .rest import Response, RestApp
from .services import measured_lookup
from .validation import check_key, parse_id_body

if TYPE_CHECKING:
    from .bulk import BulkJobs
    from .store import StatusStore

# The routes each provider's function serves, in OpenAPI path syntax (api/openapi.yaml must match: tested).
ROUTES: dict[Provider, tuple[tuple[str, str], ...]] = {
    Provider.OPENMARKET: (("GET", "/openmarket/messages/{ticketId}"), ("POST", "/openmarket/status")),
    Provider.WOOXY: (("GET", "/wooxy/messages/{id}"), ("POST", "/wooxy/status")),
    Provider.WWT: (("GET", "/wwt/messages/{id}"), ("GET", "/wwt/references/{reference}"), ("POST", "/wwt/status")),
}
# The bulk function's routes (no provider calls: it stores, starts and waits; docs/bulk.md).
BULK_ROUTES = (("POST", "/wooxy/status/bulk"), ("POST", "/wooxy/bulk-jobs"), ("GET", "/wooxy/bulk-jobs/{job_id}"))
# Lambda answers at most 6 MB, and the proxy response escapes the JSON body once more (every quote grows):
# an inline bulk answer above this size is given as its finished job document, whose results_url holds it all.
MAX_INLINE_BODY = 4_500_000
# What a POST /{provider}/status body may carry: a field for each kind of key the provider takes.
BATCH_KEYS: dict[Provider, dict[str, Kind]] = {
    provider: {field: kind for field, kind in KEY_FIELDS.items() if kind in KINDS[provider]} for provider in Provider
}


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(status, to_json(body), headers or {})


def request_body(event: dict[str, Any]) -> str | bytes | None:
    """The body as sent. API Gateway hands a body that is not UTF-8 over base64-encoded: its bytes go to the
    validator, which answers 400 for them (decoding them as text here would be a 500)."""
    body = event.get("body")
    if not event.get("isBase64Encoded") or not body:
        return body
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        raise InvalidRequest("the body must be UTF-8 JSON") from None


def path_value(raw: str) -> str:
    """API Gateway REST passes `path` and `pathParameters` on still percent-encoded, as they were in the URL
    (`/wooxy/messages/a%20b` gives "a%20b"). Each value is decoded here, once, so ids are judged and answered
    as the caller meant them ("a b")."""
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise InvalidRequest("the path must be percent-encoded UTF-8") from None


def decoded_path[R](route: Callable[..., R]) -> Callable[..., R]:
    """A route whose path parameters arrive decoded (`path_value`)."""

    @wraps(route)
    def with_decoded(**params: str) -> R:
        return route(**{name: path_value(value) for name, value in params.items()})

    return with_decoded


def report_response(report: Report) -> Response:
    """Single-id routes: 200 with the report, or 404 with the `not_found` report."""
    return json_response(404 if report.status is Status.NOT_FOUND else 200, report.to_dict())


def batch_response(provider: Provider, reports: list[Report]) -> dict[str, Any]:
    return {"provider": str(provider), "results": [report.to_dict() for report in reports]}


def parse_batch(raw_body: str | bytes | None, provider: Provider) -> tuple[Kind, list[str]]:
    """Validate a batch body (`validation.parse_id_body`); every problem is a clear 400 naming the field."""
    _, kind, keys = parse_id_body(raw_body, BATCH_KEYS[provider], MAX_BATCH, lambda kind, key: as_key(key, provider, kind))
    return kind, keys  # type: ignore[return-value]  # a Kind of BATCH_KEYS


def create_app(provider: Provider, service: Callable[[], StatusService]) -> RestApp:
    """A provider's routes; `service` gives the function's one service (`config.Configured`)."""
    app = RestApp()

    def single(kind: Kind):
        @decoded_path
        def route(**path_params: str) -> Response:  # one path parameter, named as in the OpenAPI path
            (key,) = path_params.values()
            return report_response(measured_lookup(service(), [key], kind)[0])  # the lookup judges the id (validation.check_key)

        return route

    def batch() -> dict[str, Any]:
        kind, keys = parse_batch(request_body(app.event), provider)
        return batch_response(provider, measured_lookup(service(), keys, kind))

    for method, path in ROUTES[provider]:
        rule = path.replace("{", "<").replace("}", ">")
        if method == "POST":
            app.route(rule, method)(batch)
        else:
            app.route(rule, method)(single("reference" if "/references/" in path else "id"))

    register_error_handlers(app)
    return app


def create_tracked_app(store: Callable[[], StatusStore]) -> RestApp:
    """GET /tracked/{provider}/{id}: the stored report and history of a message followed through the queue
    path (no provider call). WWT references are tracked apart from WWT ids: `?kind=reference`. `store` gives
    the function's status table (`config.Configured`)."""
    from .store import TrackKey  # the table adapter: only the tracked function pays for its import

    app = RestApp()

    @app.get("/tracked/<provider>/<message_id>")
    @decoded_path
    def tracked(provider: str, message_id: str) -> Response:
        if provider not in set(Provider):
            raise InvalidRequest(f"unknown provider; expected one of: {', '.join(Provider)}")
        check_key(message_id)  # DynamoDB refuses keys over 2 KB: a 400, not a 500
        kind = (app.event.get("queryStringParameters") or {}).get("kind", "id")
        if kind not in KEY_FIELDS.values():
            raise InvalidRequest('kind must be "id" or "reference"')
        # A provider that is not asked by this kind of key tracks none: simply not tracked.
        item = store().get(TrackKey(Provider(provider), kind, message_id)) if kind in KINDS[Provider(provider)] else None
        if item is None:
            return json_response(404, InvalidRequest("this message is not tracked", {"provider": provider, "kind": kind}).to_body())
        if item.report is None:  # followed, but every check so far met a provider outage
            message = "this message is tracked, but the provider has not answered for it yet"
            return json_response(404, InvalidRequest(message, {"provider": provider, "kind": kind}).to_body())
        return json_response(200, {"provider": provider, "id": message_id, "kind": kind, **item.to_public()})

    register_error_handlers(app)
    return app


def create_bulk_app(jobs_for: Callable[[], BulkJobs]) -> RestApp:
    """POST /wooxy/status/bulk (inline, up to 10,000 ids), POST /wooxy/bulk-jobs (up to 100,000), GET a job.
    `jobs_for` gives the function's jobs (`config.Configured`).

    Every job has an owner, the caller API Gateway's IAM authorization names (`bulk.caller_of`): only the owner
    sees it, and each caller (and the stack) runs at most so many jobs at once (429 too_many_jobs beyond)."""
    from .bulk import (
        FAILED,
        MAX_INLINE_IDS,
        MAX_JOB_IDS,
        RUNNING,
        SUCCEEDED,
        Job,
        answer_by,
        arrival_of,
        caller_of,
        parse_body,
    )

    app = RestApp()

    def request_context() -> dict[str, Any]:
        return app.event.get("requestContext") or {}

    def owner() -> str:
        caller = caller_of(request_context())
        if caller is None:  # deployed, every route has AWS_IAM; locally the server names a caller
            raise ServiceError("the request names no caller (requestContext.identity): bulk routes need AWS_IAM")
        return caller

    def accepted(job: Job, results_url: str | None = None) -> Response:
        return json_response(202, job.document(results_url), {"Location": f"/wooxy/bulk-jobs/{job.job_id}"})

    @app.post("/wooxy/status/bulk")
    def bulk_inline() -> Response:
        jobs = jobs_for()
        started = jobs.clock.now()
        ids = parse_body(request_body(app.event), MAX_INLINE_IDS)
        # Measured from the request's arrival at API Gateway, which answers 504 itself at 29 s: the answer
        # (200, or 202 with the job) leaves by 27 s after it, whatever the reads on the way meet.
        arrival = arrival_of(request_context().get("requestTimeEpoch"), started)
        context = app.lambda_context
        remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else None
        until = answer_by(arrival, started, remaining)
        job = jobs.submit(ids, owner())
        # Wait here, never in the chunk function: a waiter holding one of its slots could starve its own chunks.
        job = jobs.wait(job, until, arrival + jobs.store.config.inline_wait)
        if job.state == RUNNING:
            return accepted(job)
        if job.state == FAILED:
            raise ServiceError("the bulk lookup failed before it could answer", {"job_id": job.job_id})
        lines = jobs.results_in_time(job, until)
        body = None if lines is None else '{"provider": "wooxy", "results": [' + ",".join(lines) + "]}"
        if body is None or len(body) > MAX_INLINE_BODY:  # too late to read, or too large: the finished job
            return accepted(job, jobs.store.results_url(job.job_id))
        return Response(200, body)

    @app.post("/wooxy/bulk-jobs")
    def bulk_job() -> Response:
        ids = parse_body(request_body(app.event), MAX_JOB_IDS)
        return accepted(jobs_for().submit(ids, owner()))

    @app.get("/wooxy/bulk-jobs/<job_id>")
    @decoded_path
    def get_job(job_id: str) -> Response:
        jobs = jobs_for()
        # Unknown, another caller's, or expired (the table's TTL deletes late): the same 404, word for word.
        job = jobs.visible(job_id, caller_of(request_context()))
        if job is None:
            return json_response(404, InvalidRequest("no such bulk job (job data expires)", {"job_id": job_id[:64]}).to_body())
        # Signed anew on each GET: a caller whose URL has expired asks for the job again.
        return json_response(200, job.document(jobs.store.results_url(job.job_id) if job.state == SUCCEEDED else None))

    register_error_handlers(app)
    return app


def register_error_handlers(app: RestApp) -> None:
    """The one place where errors become the pinned error JSON and HTTP status."""

    @app.exception_handler(ServiceError)
    def service_error(error: ServiceError) -> Response:
        log = logger.error if error.http_status >= 500 and not error.code.startswith("provider") else logger.warning
        log("request failed", extra={"error_code": error.code, "http_status": error.http_status, "reason": error.message})
        retry_after = getattr(error, "retry_after", None)
        return json_response(error.http_status, error.to_body(), {"Retry-After": str(retry_after)} if retry_after else None)

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response:
        logger.exception("unexpected error")
        return json_response(500, ServiceError("internal error").to_body())

    @app.not_found
    def no_route() -> Response:
        return json_response(404, InvalidRequest(f"no route {app.event.get('httpMethod')} {app.event.get('path')}").to_body())

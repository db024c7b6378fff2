"""Wooxy bulk lookups end to end: the stack built from template.yaml in moto (S3 bucket, jobs table, the
Standard state machine with its Distributed Map on moto's interpreter, payload quota ON), the real bulk and
Wooxy handlers, and the Wooxy sandbox over HTTP on 127.0.0.1 counting ids per request and requests in flight.

No test here lifts an AWS quota: a design that only works with a limit lifted does not work on AWS.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.function_env import install_function_environ
from local.lambda_runtime import FunctionThrottled
from local.sandboxes import wooxy as wooxy_sandbox_module
from local.sandboxes.base import Fault
from local.sandboxes.wooxy import WooxySandbox
from local.stack import LocalAws
from tests.apigw import rest_event

pytestmark = pytest.mark.slow

# The template's defaults: WooxyChunkFunction's reserved concurrency (also the Map's MaxConcurrency) and
# WooxyFunction's; the local runtime holds each function to its reservation (callers wait for a slot).
BULK_SHARE = 4
API_SHARE = 2


def ids_for(count: int) -> list[str]:
    return [f"{n:024x}" for n in range(1, count + 1)]  # shaped like Wooxy's own ids


@pytest.fixture(scope="module")
def sandbox() -> Iterator[WooxySandbox]:
    with WooxySandbox(hang=10) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def stack(sandbox: WooxySandbox) -> Iterator[LocalAws]:
    install_function_environ()  # each function sees its own Environment, as in its own Lambda container
    aws = LocalAws({"WooxyBaseUrl": sandbox.base_url}, {"WooxySecret": wooxy_sandbox_module.DEFAULT_CREDENTIALS}).start()
    try:
        yield aws
    finally:
        aws.stop()


@pytest.fixture
def wooxy(sandbox: WooxySandbox, stack: LocalAws) -> Iterator[WooxySandbox]:
    """The sandbox, emptied of messages, faults and statistics for each test."""
    sandbox.messages.clear()
    sandbox.clear_faults()
    sandbox.reset_stats()
    sandbox.requests.clear()
    sandbox.latency = 0.0
    yield sandbox
    sandbox.clear_faults()


def seed(sandbox: WooxySandbox, ids: list[str]) -> None:
    for key in ids:
        sandbox.add_message(key, steps=[(0, "sent")], text="secret text")


def as_caller(event: dict[str, Any], user: str) -> dict[str, Any]:
    """The event as API Gateway passes it for another IAM user's SigV4-signed request."""
    event["requestContext"]["identity"] = {
        "caller": f"AIDA{user.upper()}",
        "accessKey": f"AKIA{user.upper()}",
        "userArn": f"arn:aws:iam::123456789012:user/{user}",
        "sourceIp": "127.0.0.1",
    }
    return event


def call(
    stack: LocalAws, method: str, resource: str, body: Any = None, path: dict[str, str] | None = None, caller: str | None = None
) -> tuple[int, dict[str, str], Any]:
    event = rest_event(method, resource, path, body)
    if caller is not None:
        event = as_caller(event, caller)
    response = stack.functions["WooxyBulkFunction"].invoke(event)
    headers = {**(response.get("headers") or {}), **{k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}}
    return response["statusCode"], headers, json.loads(response["body"])


def job_until_done(stack: LocalAws, job_id: str, timeout: float = 120, caller: str | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, _, job = call(stack, "GET", "/wooxy/bulk-jobs/{job_id}", path={"job_id": job_id}, caller=caller)
        assert status == 200
        if job["state"] != "running" or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def results_file(stack: LocalAws, job_id: str) -> list[dict[str, Any]]:
    """The job's results.jsonl, read from S3 as results_url would serve it."""
    bucket = stack.buckets["BulkBucket"]
    body = boto3.client("s3").get_object(Bucket=bucket, Key=f"jobs/{job_id}/results.jsonl")["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def sent_ids(sandbox: WooxySandbox) -> list[list[str]]:
    return [json.loads(request.body)["ids"] for request in sandbox.requests]


# ---- inline ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 101, 10_000])
def test_inline_answers_every_distinct_id_once_in_request_order(stack: LocalAws, wooxy: WooxySandbox, count: int):
    ids = ids_for(count)
    seed(wooxy, ids[:-1])  # the last one is unknown to Wooxy
    wooxy.latency = 0.01  # long enough for chunks to overlap
    asked = ids + ids[:50] if count < 10_000 else ids  # duplicates are answered once (10,000 is the cap)

    status, _, body = call(stack, "POST", "/wooxy/status/bulk", {"ids": asked})

    assert status == 200
    assert body["provider"] == "wooxy"
    assert [report["id"] for report in body["results"]] == ids
    assert [report["status"] for report in body["results"]] == ["sent"] * (count - 1) + ["not_found"]
    assert "secret text" not in json.dumps(body)  # message text never leaves the function
    chunks = sent_ids(wooxy)
    assert sorted(key for chunk in chunks for key in chunk) == sorted(ids)  # each id asked exactly once
    assert len(chunks) == -(-count // 100)
    assert wooxy.max_ids_per_request <= 100
    assert 1 <= wooxy.max_in_flight <= BULK_SHARE


def test_inline_answers_202_with_the_job_when_it_takes_longer(stack: LocalAws, wooxy: WooxySandbox, monkeypatch, request):
    bulk = stack.functions["WooxyBulkFunction"]
    monkeypatch.setitem(bulk.environment, "BULK_INLINE_WAIT", "0.3")
    bulk.restart()  # reads the wait at its next cold start
    request.addfinalizer(bulk.restart)  # and the next test's cold start reads the stack's own
    ids = ids_for(300)
    seed(wooxy, ids)
    wooxy.latency = 0.5

    status, headers, job = call(stack, "POST", "/wooxy/status/bulk", {"ids": ids})

    assert status == 202
    assert headers["Location"] == f"/wooxy/bulk-jobs/{job['job_id']}"
    assert (job["state"], job["total"], job["results_url"], job["finished_at"]) == ("running", 300, None, None)
    done = job_until_done(stack, job["job_id"])  # the job went on
    assert (done["state"], done["done"], done["counts"]) == ("succeeded", 300, {"sent": 300})


# ---- jobs --------------------------------------------------------------------------------------------
def test_a_100000_id_job_succeeds_with_a_results_file_in_request_order(stack: LocalAws, wooxy: WooxySandbox):
    ids = ids_for(100_000)
    seed(wooxy, ids[::2])  # every other id is unknown to Wooxy

    status, headers, job = call(stack, "POST", "/wooxy/bulk-jobs", {"ids": ids})

    assert status == 202
    assert headers["Location"] == f"/wooxy/bulk-jobs/{job['job_id']}"
    assert (job["provider"], job["state"], job["total"], job["done"], job["counts"]) == ("wooxy", "running", 100_000, 0, {})
    done = job_until_done(stack, job["job_id"], timeout=240)
    assert done["state"] == "succeeded", done
    assert (done["total"], done["done"]) == (100_000, 100_000)
    assert done["counts"] == {"sent": 50_000, "not_found": 50_000}
    assert done["finished_at"] >= done["created_at"]
    assert done["results_url"].startswith("http")
    results = results_file(stack, job["job_id"])
    assert [report["id"] for report in results] == ids
    assert [report["status"] for report in results[:4]] == ["sent", "not_found", "sent", "not_found"]
    assert wooxy.max_ids_per_request <= 100
    assert wooxy.max_in_flight <= BULK_SHARE
    assert len(wooxy.requests) == 1_000


def test_a_failing_chunk_becomes_error_reports_for_its_ids_only(stack: LocalAws, wooxy: WooxySandbox):
    ids = ids_for(500)
    seed(wooxy, ids)
    third_chunk = ids[200:300]
    wooxy.inject(Fault.SERVER_ERROR, times=None, match=lambda request: third_chunk[0].encode() in request.body)

    status, _, body = call(stack, "POST", "/wooxy/status/bulk", {"ids": ids})

    assert status == 200
    results = body["results"]
    assert [report["id"] for report in results] == ids
    failed = [report for report in results if report["status"] == "unknown"]
    assert [report["id"] for report in failed] == third_chunk
    for report in failed:
        assert (report["final"], report["retryable"]) == (False, True)
        # the pinned error code, the same as POST /wooxy/status would answer for this failure
        assert report["provider_status"]["code"] == "provider_unavailable"
        assert report["details"]["error"]["code"] == "provider_unavailable"
        assert "500" in report["details"]["error"]["message"]
    assert all(report["status"] == "sent" for report in results if report["id"] not in third_chunk)
    # The state machine tried the chunk twice, each time with the function's own HTTP retries (2): 2 x 3.
    assert sum(third_chunk[0] in chunk for chunk in sent_ids(wooxy)) == 6


def test_refused_credentials_become_non_retryable_error_reports(stack: LocalAws, wooxy: WooxySandbox, monkeypatch):
    monkeypatch.setattr(wooxy, "access_token", "rotated-away")
    ids = ids_for(3)

    status, _, body = call(stack, "POST", "/wooxy/status/bulk", {"ids": ids})

    assert status == 200
    assert [(r["id"], r["status"], r["retryable"], r["provider_status"]["code"]) for r in body["results"]] == [
        (key, "unknown", False, "credentials_error") for key in ids
    ]


# ---- the stack-wide Wooxy limit, whatever overlaps ---------------------------------------------------
def test_bulk_calls_a_job_and_single_lookups_together_stay_within_wooxy_limits(stack: LocalAws, wooxy: WooxySandbox):
    ids = ids_for(3_000)
    seed(wooxy, ids)
    wooxy.latency = 0.02
    answers: dict[str, Any] = {}

    def inline(name: str, part: list[str]) -> None:  # each its own caller: one caller runs at most 2 jobs at once
        answers[name] = call(stack, "POST", "/wooxy/status/bulk", {"ids": part}, caller=name.replace("-", ""))

    def single(key: str) -> None:
        event = rest_event("GET", "/wooxy/messages/{id}", {"id": key})
        for _ in range(200):  # with every reserved execution busy Lambda refuses (API Gateway: 500); a client retries
            try:
                answers[f"single-{key}"] = stack.functions["WooxyFunction"].invoke(event)["statusCode"]
                return
            except FunctionThrottled:
                time.sleep(0.1)

    _, _, job = call(stack, "POST", "/wooxy/bulk-jobs", {"ids": ids})
    threads = [threading.Thread(target=inline, args=(f"bulk-{n}", ids[n * 500 : (n + 1) * 500])) for n in range(3)]
    threads += [threading.Thread(target=single, args=(key,)) for key in ids[:5]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert job_until_done(stack, job["job_id"])["state"] == "succeeded"
    for n in range(3):
        status, _, body = answers[f"bulk-{n}"]
        assert status == 200
        assert [report["id"] for report in body["results"]] == ids[n * 500 : (n + 1) * 500]
    assert all(answers[f"single-{key}"] == 200 for key in ids[:5])
    assert wooxy.max_ids_per_request <= 100
    # Each path within its own share of Wooxy's 10: bulk chunks and API lookups together, never more.
    assert 1 < wooxy.max_in_flight <= BULK_SHARE + API_SHARE <= 10


# ---- bad input and unknown jobs ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("route", "payload", "reason"),
    [
        ("/wooxy/status/bulk", {"ids": "5d91537bd132fdf45916520a"}, "array"),
        ("/wooxy/status/bulk", {}, "exactly one of"),
        ("/wooxy/status/bulk", {"ids": []}, "1 to 10000"),
        ("/wooxy/status/bulk", {"ids": ids_for(10_001)}, "got 10001"),
        ("/wooxy/bulk-jobs", {"ids": ids_for(100_001)}, "got 100001"),
        ("/wooxy/bulk-jobs", {"ids": ["5d91537bd132fdf45916520a", 7]}, "positions: [1]"),
        ("/wooxy/status/bulk", {"ids": ["   "]}, "positions: [0]"),
        ("/wooxy/bulk-jobs", {"ids": ["x" * 129]}, "positions: [0]"),
        ("/wooxy/status/bulk", {"ids": ["a"], "references": ["b"]}, "unknown field"),
        ("/wooxy/bulk-jobs", [], "JSON object"),
        ("/wooxy/status/bulk", "not json", "must be JSON"),
    ],
)
def test_bad_input_is_a_400_before_anything_is_stored_or_sent(stack: LocalAws, wooxy: WooxySandbox, route: str, payload: Any, reason: str):
    bucket = stack.buckets["BulkBucket"]
    before = boto3.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0)

    status, _, body = call(stack, "POST", route, payload)

    assert status == 400
    assert body["error"]["code"] == "invalid_request"
    assert reason in body["error"]["message"]
    assert wooxy.requests == []
    assert boto3.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0) == before


@pytest.mark.parametrize("job_id", ["0" * 32, "not-a-job", "..%2F..%2Fetc%2Fpasswd"])
def test_an_unknown_job_is_a_404(stack: LocalAws, job_id: str):
    status, _, body = call(stack, "GET", "/wooxy/bulk-jobs/{job_id}", path={"job_id": job_id})
    assert status == 404
    assert body["error"]["code"] == "invalid_request"
    assert "no such bulk job" in body["error"]["message"]


def test_a_job_whose_execution_ended_without_finishing_is_failed(stack: LocalAws, wooxy: WooxySandbox):
    """Timeouts and aborts cannot be caught in the state machine: a GET asks Step Functions."""
    seed(wooxy, ids_for(200))
    wooxy.latency = 0.5
    _, _, job = call(stack, "POST", "/wooxy/bulk-jobs", {"ids": ids_for(200)})
    while not wooxy.requests:  # the execution is under way (moto cannot stop one that has not begun)
        time.sleep(0.01)
    sfn = boto3.client("stepfunctions")
    arn = stack.state_machines["WooxyBulkStateMachine"].replace(":stateMachine:", ":execution:") + f":{job['job_id']}"
    sfn.stop_execution(executionArn=arn)

    done = job_until_done(stack, job["job_id"], timeout=30)

    assert (done["state"], done["results_url"]) == ("failed", None)
    assert done["finished_at"] is not None


# ---- owners, expiry, the budget, logs -----------------------------------------------------------------
def test_a_job_is_its_owners_alone_another_caller_gets_the_unknown_job_answer(stack: LocalAws, wooxy: WooxySandbox):
    seed(wooxy, ids_for(3))
    status, _, job = call(stack, "POST", "/wooxy/bulk-jobs", {"ids": ids_for(3)}, caller="alice")
    assert status == 202
    done = job_until_done(stack, job["job_id"], caller="alice")
    assert (done["state"], done["results_url"] is not None) == ("succeeded", True)

    path = {"job_id": job["job_id"]}
    theirs = call(stack, "GET", "/wooxy/bulk-jobs/{job_id}", path=path, caller="bob")
    unknown = call(stack, "GET", "/wooxy/bulk-jobs/{job_id}", path={"job_id": "0" * 32}, caller="bob")
    assert theirs[0] == unknown[0] == 404
    assert json.dumps(theirs[2]).replace(job["job_id"], "0" * 32) == json.dumps(unknown[2])  # word for word
    assert call(stack, "GET", "/wooxy/bulk-jobs/{job_id}", path=path, caller="alice")[0] == 200


def test_locally_two_sigv4_access_keys_are_two_callers(stack: LocalAws, wooxy: WooxySandbox):
    """The local server names the caller from the SigV4 Authorization header, as API Gateway's IAM auth would."""
    from local.api_server import Route, compile_path, proxy_event

    def event(method: str, resource: str, key_id: str | None, params: dict[str, str], body: bytes = b"") -> dict[str, Any]:
        headers = {"Host": "127.0.0.1:3000", "Content-Type": "application/json"}
        if key_id is not None:
            headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential={key_id}/20261202/us-east-1/execute-api/aws4_request, Signature=0"
        path = resource.replace("{job_id}", params.get("job_id", ""))
        route = Route(method, resource, compile_path(resource), "WooxyBulkFunction")
        return proxy_event(route, params, method, path, "", headers, body, "v1")

    def invoke(payload: dict[str, Any]) -> tuple[int, Any]:
        response = stack.functions["WooxyBulkFunction"].invoke(payload)
        return response["statusCode"], json.loads(response["body"])

    seed(wooxy, ids_for(2))
    status, job = invoke(event("POST", "/wooxy/bulk-jobs", "AKIALOCALKEYONE00001", {}, json.dumps({"ids": ids_for(2)}).encode()))
    assert status == 202
    params = {"job_id": job["job_id"]}
    assert invoke(event("GET", "/wooxy/bulk-jobs/{job_id}", "AKIALOCALKEYONE00001", params))[0] == 200
    assert invoke(event("GET", "/wooxy/bulk-jobs/{job_id}", "AKIALOCALKEYTWO00002", params))[0] == 404
    assert invoke(event("GET", "/wooxy/bulk-jobs/{job_id}", None, params))[0] == 404  # the unsigned local caller
    deadline = time.monotonic() + 60
    while invoke(event("GET", "/wooxy/bulk-jobs/{job_id}", "AKIALOCALKEYONE00001", params))[1]["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)  # done before the next test: its slot is given back


def test_over_the_running_jobs_budget_a_submit_is_a_429_with_retry_after(stack: LocalAws, wooxy: WooxySandbox):
    seed(wooxy, ids_for(200))
    wooxy.latency = 0.3  # the first two jobs are still running when the third comes
    first = [call(stack, "POST", "/wooxy/bulk-jobs", {"ids": ids_for(200)}, caller="dave") for _ in range(2)]
    assert [status for status, _, _ in first] == [202, 202]

    status, headers, body = call(stack, "POST", "/wooxy/status/bulk", {"ids": ids_for(1)}, caller="dave")

    assert status == 429
    assert int(headers["Retry-After"]) > 0
    assert body["error"]["code"] == "too_many_jobs"
    assert body["error"]["details"] == {"scope": "caller", "limit": 2, "retry_after": int(headers["Retry-After"])}
    assert call(stack, "POST", "/wooxy/bulk-jobs", {"ids": ids_for(1)}, caller="erin")[0] == 202  # another caller
    for _, _, job in first:
        assert job_until_done(stack, job["job_id"], caller="dave")["state"] == "succeeded"


def test_no_results_url_signature_or_id_reaches_the_logs_of_a_submit_and_a_get(stack: LocalAws, wooxy: WooxySandbox, caplog):
    import io
    import logging

    from sms_status.observability import logger

    ids = ids_for(150)
    seed(wooxy, ids)
    captured = io.StringIO()
    handler = logger.registered_handler
    original = handler.setStream(captured)
    level = logger.log_level
    logger.setLevel(logging.DEBUG)  # every line of ours (the local run keeps WARNING and above only)
    caplog.set_level(logging.INFO)  # other loggers as deployed (LogLevel); DEBUG is botocore tracing every request
    try:
        _, _, inline = call(stack, "POST", "/wooxy/status/bulk", {"ids": ids})
        _, _, job = call(stack, "POST", "/wooxy/bulk-jobs", {"ids": ids})
        done = job_until_done(stack, job["job_id"])
    finally:
        handler.setStream(original)
        logger.setLevel(level)
    assert inline["results"][0]["id"] == ids[0]
    assert "X-Amz-Signature=" in done["results_url"]  # there was a URL to leak
    logs = captured.getvalue() + "\n".join(record.getMessage() for record in caplog.records)
    assert "bulk" in logs  # the bulk path did log
    for secret in ("X-Amz-Signature", "X-Amz-Credential", "Signature=", done["results_url"].split("?")[0], "results.jsonl", *ids):
        assert secret not in logs

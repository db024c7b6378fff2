"""The bulk rules (sms_status.bulk.rules): input validation, chunking, failed-chunk reports and the job document."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sms_status.bulk.rules import (
    CHUNK_SIZE,
    EXECUTION_TIMEOUT,
    MAX_INLINE_IDS,
    MAX_JOB_IDS,
    SLOT_SECONDS,
    STACK_SLOTS,
    ChunkFailure,
    ChunkTask,
    Job,
    caller_of,
    caller_slots,
    chunks,
    is_job_id,
    live_slots,
    merge_results,
    new_job_id,
    parse_body,
    to_lines,
)
from sms_status.errors import InvalidRequest


def test_limits_are_the_pinned_ones():
    # From the contract: 100 ids a Wooxy request, 10,000 inline, 100,000 as a job.
    assert (CHUNK_SIZE, MAX_INLINE_IDS, MAX_JOB_IDS) == (100, 10_000, 100_000)


def test_validation_keeps_first_occurrences_in_request_order():
    assert parse_body(json.dumps({"ids": ["b", "a", "b", "c", "a"]}), 10) == ["b", "a", "c"]


def test_the_limit_counts_ids_as_sent_not_as_distinct():
    assert len(parse_body(json.dumps({"ids": ["a"] * 10}), 10)) == 1
    with pytest.raises(InvalidRequest) as raised:
        parse_body(json.dumps({"ids": ["a"] * 11}), 10)
    assert raised.value.details == {"max": 10, "count": 11}
    assert raised.value.message == "ids must be an array of 1 to 10 strings, got 11"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (None, 'the body must be a JSON object: {"ids": [...]}'),
        ([], 'the body must be a JSON object: {"ids": [...]}'),
        ({"ids": "a"}, "ids must be an array of 1 to 10 strings"),
        ({}, 'the body must hold exactly one of: {"ids": [...]}'),
        ({"ids": []}, "ids must be an array of 1 to 10 strings, got 0"),
        ({"ids": ["a"], "x": 1}, 'unknown field(s): "x"; expected {"ids": [...]}'),
        ({"ids": ["a", "", " ", 7, None, "x" * 129, "x" * 128]}, "(bad positions: [1, 2, 3, 4, 5])"),
    ],
)
def test_validation_rejects_with_a_message_naming_the_problem(payload: Any, message: str):
    with pytest.raises(InvalidRequest) as raised:
        parse_body(json.dumps(payload), 10)
    assert raised.value.message.endswith(message)
    assert raised.value.http_status == 400


def test_body_that_is_not_json_is_a_400():
    with pytest.raises(InvalidRequest, match="must be JSON"):
        parse_body("{ids: [", 10)
    assert parse_body('{"ids": ["x"]}', 10) == ["x"]


@pytest.mark.parametrize(("count", "sizes"), [(1, [1]), (100, [100]), (101, [100, 1]), (250, [100, 100, 50])])
def test_chunks_are_consecutive_100_id_slices(count: int, sizes: list[int]):
    ids = [f"id{n}" for n in range(count)]
    parts = chunks(ids)
    assert [len(part) for part in parts] == sizes
    assert [key for part in parts for key in part] == ids  # chunk order is request order


def test_job_ids_are_32_hex_and_checked():
    job_id = new_job_id()
    assert is_job_id(job_id)
    assert job_id != new_job_id()
    for bad in ("", "x" * 32, job_id.upper(), job_id + "0", "../" + job_id[3:]):
        assert not is_job_id(bad)


@pytest.mark.parametrize(
    "event",
    [
        None,
        {"index": 0, "ids": ["a"]},
        {"job_id": "0" * 32, "index": -1, "ids": ["a"]},
        {"job_id": "0" * 32, "index": True, "ids": ["a"]},
        {"job_id": "0" * 32, "index": 0, "ids": []},
        {"job_id": "0" * 32, "index": 0, "ids": ["a"] * 101},
        {"job_id": "0" * 32, "index": 0, "ids": [1]},
    ],
)
def test_a_malformed_chunk_task_is_refused(event: Any):
    with pytest.raises(InvalidRequest):
        ChunkTask.parse(event)


def test_a_chunk_task_is_parsed():
    assert ChunkTask.parse({"job_id": "a" * 32, "index": 3, "ids": ["x", "y"]}) == ChunkTask("a" * 32, 3, ["x", "y"])


# ---- failed chunks -----------------------------------------------------------------------------------
def lambda_cause(message: str) -> str:
    return json.dumps({"errorType": "provider_unavailable", "errorMessage": message, "stackTrace": ["  File x"]})


@pytest.mark.parametrize(
    ("error", "code", "retryable"),
    [
        ("provider_unavailable", "provider_unavailable", True),
        ("provider_timeout", "provider_timeout", True),
        ("provider_error", "provider_error", False),
        ("credentials_error", "credentials_error", False),
        ("internal_error", "internal_error", False),
    ],
)
def test_the_wooxy_functions_own_errors_keep_their_code_and_message(error: str, code: str, retryable: bool):
    failure = ChunkFailure.from_task_error(error, lambda_cause("Wooxy answered HTTP 503"))
    assert failure == ChunkFailure(code, "Wooxy answered HTTP 503", retryable)


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        ("Lambda.TooManyRequestsException", "Rate Exceeded."),
        ("States.Timeout", None),
        ("provider_error", "not json"),  # our name, but not our Cause: never trusted or echoed
        ("Sandbox.Timedout", json.dumps({"errorMessage": "Task timed out after 25.00 seconds"})),
    ],
)
def test_platform_failures_are_retryable_internal_errors_that_echo_no_cause(error: str, cause: str | None):
    failure = ChunkFailure.from_task_error(error, cause)
    assert failure == ChunkFailure("internal_error", f"the Wooxy function could not look up this chunk ({error})", True)


def test_failed_chunk_reports_one_unknown_not_final_report_per_id():
    reports = ChunkFailure("provider_unavailable", "Wooxy answered HTTP 503", True).reports(["a", "b"])
    assert [report["id"] for report in reports] == ["a", "b"]
    first = reports[0]
    assert (first["provider"], first["status"], first["final"], first["retryable"]) == ("wooxy", "unknown", False, True)
    assert first["provider_status"] == {"code": "provider_unavailable", "description": "Wooxy answered HTTP 503"}
    assert first["details"] == {"error": {"code": "provider_unavailable", "message": "Wooxy answered HTTP 503", "details": None}}
    assert first["checked_at"].endswith("Z")
    assert first["submitted_at"] is first["recipient"] is first["price"] is None


# ---- the job document --------------------------------------------------------------------------------
def test_job_document_is_the_pinned_shape():
    job = Job(job_id="f" * 32, total=250, chunk_count=3, created_at="2026-11-29T10:00:00.000Z", done=100)
    job.counts = {"pending": 0, "unknown": 1, "delivered": 99}
    document = job.document("https://example.invalid/never-shown-while-running")
    assert document == {
        "job_id": "f" * 32,
        "provider": "wooxy",
        "state": "running",
        "total": 250,
        "done": 100,
        "counts": {"delivered": 99, "unknown": 1},
        "created_at": "2026-11-29T10:00:00.000Z",
        "finished_at": None,
        "results_url": None,
    }
    assert list(document["counts"]) == ["delivered", "unknown"]  # the order of the normalized statuses


def test_results_url_only_once_succeeded():
    job = Job(job_id="f" * 32, total=1, chunk_count=1, created_at="t", state="succeeded", done=1, finished_at="u")
    assert job.document("https://s3/results")["results_url"] == "https://s3/results"
    job.state = "failed"
    assert job.document("https://s3/results")["results_url"] is None


# ---- the merge of chunk results ----------------------------------------------------------------------
def test_merge_keeps_chunk_order_and_needs_no_ids_when_every_chunk_answered():
    assert merge_results([["a1", "a2"], ["b1"], []]) == ["a1", "a2", "b1"]


def test_merge_gives_a_missing_chunk_internal_error_reports_for_its_ids_in_place():
    lines = merge_results([["r0"], None, ["r2"]], [["x"], ["y", "z"], ["w"]])
    assert (lines[0], lines[-1]) == ("r0", "r2")
    lost = [json.loads(line) for line in lines[1:3]]
    assert [report["id"] for report in lost] == ["y", "z"]
    shapes = {(r["status"], r["final"], r["retryable"], r["provider_status"]["code"]) for r in lost}
    assert shapes == {("unknown", False, True, "internal_error")}
    assert lines[1:3] == to_lines(lost)


def test_merge_of_a_missing_chunk_without_its_ids_is_refused():
    with pytest.raises(ValueError, match="chunk 1"):
        merge_results([["r0"], None])


# ---- owners, slots, expiry ---------------------------------------------------------------------------
def test_the_caller_is_the_iam_principal_api_gateway_names():
    # A SigV4-authorised REST proxy event: requestContext.identity holds the principal (an assumed role here).
    role = "arn:aws:sts::123456789012:assumed-role/Sender/session-1"
    assert caller_of({"identity": {"userArn": role, "caller": "AROAEXAMPLE:session-1", "accessKey": "ASIAEXAMPLE"}}) == role
    assert caller_of({"identity": {"userArn": None, "caller": "AIDAEXAMPLE", "accessKey": "AKIAEXAMPLE"}}) == "AIDAEXAMPLE"
    assert caller_of({"identity": {"userArn": "", "caller": " ", "accessKey": "AKIAEXAMPLE"}}) == "AKIAEXAMPLE"
    assert caller_of({"identity": {"sourceIp": "127.0.0.1", "userArn": None}}) is None
    assert caller_of({}) is caller_of(None) is None


def test_running_jobs_items_can_never_be_read_as_jobs():
    assert not is_job_id(STACK_SLOTS)
    key = caller_slots("arn:aws:iam::123456789012:user/alice")
    assert not is_job_id(key)
    assert "alice" not in key
    assert key == caller_slots("arn:aws:iam::123456789012:user/alice") != caller_slots("arn:aws:iam::123456789012:user/bob")


def test_slots_lapse_once_their_time_has_passed():
    assert live_slots({"a": 100, "b": 200}, 150) == {"b": 200}
    assert live_slots({"a": 100}, 99.5) == {"a": 100}
    assert SLOT_SECONDS > EXECUTION_TIMEOUT  # a job that died unseen frees its slot only once it cannot run


def test_a_job_is_visible_to_its_owner_only_and_only_until_it_expires():
    job = Job(job_id="f" * 32, total=1, chunk_count=1, created_at="t", owner="alice", expires_at=1_000)
    assert job.visible_to("alice", 999.0)
    assert not job.visible_to("alice", 1_000.0)
    assert not job.visible_to("bob", 999.0)
    assert not job.visible_to(None, 999.0)
    assert not Job(job_id="f" * 32, total=1, chunk_count=1, created_at="t").visible_to("alice", 0.0)  # nobody's job

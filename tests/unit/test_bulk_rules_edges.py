"""The bulk rules at their edges: the exact refusals of a chunk task, the stored keys, lapsing slots, the error
names a chunk fails with, the results file's line format and the order of a job's counts."""

from __future__ import annotations

from typing import Any

import pytest

from sms_status.bulk.rules import (
    ChunkFailure,
    ChunkTask,
    Job,
    caller_slots,
    count_statuses,
    live_slots,
    named_by_code,
    to_lines,
)
from sms_status.errors import InvalidRequest, ProviderTimeout, ProviderUnavailable

JOB = "0" * 32


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (["not", "an", "object"], "a bulk chunk must be an object {job_id, index, ids}"),
        ({"job_id": "J" * 32, "index": 0, "ids": ["a"]}, "a bulk chunk needs its job_id"),
        ({"job_id": JOB, "index": "0", "ids": ["a"]}, "a bulk chunk needs its index (0, 1, ...)"),
        ({"job_id": JOB, "index": 0, "ids": "a"}, "a bulk chunk holds 1 to 100 ids"),
    ],
)
def test_a_malformed_chunk_task_is_refused_saying_what_is_wrong(event: Any, message: str):
    with pytest.raises(InvalidRequest) as raised:
        ChunkTask.parse(event)
    assert raised.value.message == message


@pytest.mark.parametrize("size", [1, 100])
def test_the_first_chunk_and_chunks_of_one_to_100_ids_are_taken(size: int):
    ids = [f"id{n}" for n in range(size)]
    assert ChunkTask.parse({"job_id": JOB, "index": 0, "ids": ids}) == ChunkTask(JOB, 0, ids)


def test_a_callers_running_jobs_key_is_stable_across_releases():
    # Stored in the jobs table while a job runs: a new key format would orphan the slots of running jobs.
    key = caller_slots("arn:aws:iam::123456789012:user/alice")
    assert key == "slots:caller:b7d71d383b9557a9bad4c3346c50365819226484"


def test_a_slot_lapses_at_its_second():
    assert live_slots({"a": 100, "b": 101}, 100) == {"b": 101}


def test_statuses_are_counted():
    assert count_statuses(["delivered", "failed", "delivered"]) == {"delivered": 2, "failed": 1}
    assert count_statuses([]) == {}


@pytest.mark.parametrize(
    "error", [ProviderUnavailable("wooxy", "Wooxy answered HTTP 503"), ProviderTimeout("wooxy", "Wooxy did not answer")]
)
def test_a_failed_chunk_is_named_by_its_error_code(error):
    named = named_by_code(error)
    assert isinstance(named, Exception)
    assert (type(named).__name__, str(named)) == (error.code, error.message)


@pytest.mark.parametrize("cause", ["[]", "null", '"provider_unavailable"'])
def test_a_cause_that_is_json_but_not_an_object_is_not_echoed(cause: str):
    failure = ChunkFailure.from_task_error("provider_unavailable", cause)
    assert failure == ChunkFailure("internal_error", "the Wooxy function could not look up this chunk (provider_unavailable)", True)


def test_results_lines_are_compact_json():
    assert to_lines([{"id": "a", "n": [1, 2]}, {"id": "b"}]) == ['{"id":"a","n":[1,2]}', '{"id":"b"}']


def test_counts_follow_the_order_of_the_statuses_not_the_alphabet():
    job = Job(job_id=JOB, total=10, chunk_count=1, created_at="t")
    job.counts = {"failed": 1, "delivered": 2, "sent": 3, "pending": 4, "something new": 5}
    assert list(job.document()["counts"]) == ["pending", "sent", "delivered", "failed", "something new"]

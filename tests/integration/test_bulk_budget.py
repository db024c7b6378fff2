"""Bulk jobs' owner, budget, state transitions and the inline deadline, on the storage itself (moto's S3 and
DynamoDB, in process) and with a fake clock: what the end-to-end tests in test_bulk_jobs.py cannot time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sms_status.bulk import BulkJobs, Clock, JobStore
from sms_status.bulk.rules import FAILED, RUNNING, SUCCEEDED, Job, caller_slots
from sms_status.bulk.storage import POLL_BUDGET, RESULTS_BUDGET
from sms_status.config import BulkConfig
from sms_status.errors import TooManyJobs

BUCKET, TABLE = "bulk-bucket", "bulk-jobs"
ALICE, BOB, CAROL = (f"arn:aws:iam::123456789012:user/{name}" for name in ("alice", "bob", "carol"))


class StartedThenLost:
    """Step Functions started the execution, but the answer never reached the submit (a timeout, a crash)."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, job_id: str) -> str:
        self.started.append(job_id)
        raise TimeoutError("read timeout after StartExecution was accepted")


class Started:
    def start(self, job_id: str) -> str:
        return f"arn:aws:states:us-east-1:123456789012:execution:bulk:{job_id}"

    def ended_unfinished(self, execution_arn: str) -> bool:
        return False


@pytest.fixture
def store() -> Iterator[JobStore]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        config = BulkConfig(bucket=BUCKET, table=TABLE, max_running_jobs=4, max_running_jobs_per_caller=2)
        yield JobStore(config, s3, dynamodb.Table(TABLE))


def write_chunk_reports(store: JobStore, job: Job, ids: list[str]) -> None:
    reports = [{"provider": "wooxy", "id": key, "status": "delivered"} for key in ids]
    store.record_chunk(job.job_id, 0, reports)


# ---- state transitions ---------------------------------------------------------------------------------------
def test_a_job_failed_after_its_execution_started_is_never_finished_as_succeeded(store: JobStore):
    executions = StartedThenLost()
    jobs = BulkJobs(store, executions)  # type: ignore[arg-type]
    with pytest.raises(TimeoutError):
        jobs.submit(["a", "b"], ALICE)  # the caller is told it failed, and may submit again
    (job_id,) = executions.started
    assert store.get(job_id).state == FAILED

    # ... while the execution it could not see runs on and reaches Finish.
    write_chunk_reports(store, store.get(job_id), ["a", "b"])
    finished = jobs.finish(job_id)

    assert finished.state == FAILED
    assert store.get(job_id).state == FAILED


def test_a_job_ends_once_whichever_transition_comes_first(store: JobStore):
    jobs = BulkJobs(store, Started())  # type: ignore[arg-type]
    job = jobs.submit(["a"], ALICE)
    write_chunk_reports(store, job, ["a"])
    assert jobs.finish(job.job_id).state == SUCCEEDED
    assert jobs.fail(job.job_id) is False  # a late failure (a GET that saw the execution end) changes nothing
    assert store.get(job.job_id).state == SUCCEEDED
    assert jobs.finish(job.job_id).state == SUCCEEDED  # a retried Finish too


# ---- owner and expiry ----------------------------------------------------------------------------------------
def test_only_the_owner_sees_a_job_and_only_until_its_data_expires(store: JobStore):
    now = [1_000_000_000.0]
    jobs = BulkJobs(store, Started(), Clock(now=lambda: now[0]))  # type: ignore[arg-type]
    job = jobs.submit(["a"], ALICE)
    stored = store.get(job.job_id)
    assert stored.owner == ALICE

    now[0] = stored.expires_at - 1
    assert jobs.visible(job.job_id, ALICE).job_id == job.job_id
    assert jobs.visible(job.job_id, BOB) is None
    assert jobs.visible(job.job_id, None) is None
    now[0] = stored.expires_at  # the table's TTL has not deleted it yet; its S3 data is gone
    assert jobs.visible(job.job_id, ALICE) is None


# ---- the running-jobs budget ---------------------------------------------------------------------------------
def test_each_caller_and_the_stack_run_at_most_their_limits_and_finished_jobs_give_their_slots_back(store: JobStore):
    jobs = BulkJobs(store, Started())  # type: ignore[arg-type]
    first, _ = jobs.submit(["a"], ALICE), jobs.submit(["b"], ALICE)
    with pytest.raises(TooManyJobs) as raised:
        jobs.submit(["c"], ALICE)
    assert (raised.value.http_status, raised.value.code, raised.value.details["scope"], raised.value.details["limit"]) == (
        429,
        "too_many_jobs",
        "caller",
        2,
    )
    assert raised.value.retry_after > 0
    jobs.submit(["c"], BOB)
    jobs.submit(["d"], BOB)
    with pytest.raises(TooManyJobs) as raised:
        jobs.submit(["e"], CAROL)  # Carol runs none, but the stack runs 4
    assert raised.value.details["scope"] == "stack"

    write_chunk_reports(store, first, ["a"])
    jobs.finish(first.job_id)  # a slot of Alice's and one of the stack's come back
    jobs.submit(["e"], CAROL)
    with pytest.raises(TooManyJobs):
        jobs.submit(["f"], ALICE)  # the stack is full again


def test_a_failed_submit_gives_its_slots_back(store: JobStore):
    for _ in range(3):
        with pytest.raises(TimeoutError):
            BulkJobs(store, StartedThenLost()).submit(["a"], ALICE)  # type: ignore[arg-type]
    BulkJobs(store, Started()).submit(["a"], ALICE)  # type: ignore[arg-type]


def test_a_slot_whose_job_died_unseen_lapses(store: JobStore):
    jobs = BulkJobs(store, Started())  # type: ignore[arg-type]
    jobs.submit(["a"], ALICE)
    jobs.submit(["b"], ALICE)
    assert store.take_slot("f" * 32, ALICE) == "caller"
    later = json.loads(json.dumps(store.table.get_item(Key={"job_id": caller_slots(ALICE)})["Item"]["slots"], default=int))
    assert store.take_slot("f" * 32, ALICE, now=max(later.values()) + 1) is None


def test_two_submits_that_meet_cannot_both_take_the_last_slot(store: JobStore, monkeypatch):
    """Two of Alice's submits interleave: the first reads both running-jobs items; before it writes, the second
    runs whole and takes her last slot. The first's transaction then fails on the version it read, it reads
    again, and finds her full."""
    store.config = BulkConfig(bucket=BUCKET, table=TABLE, max_running_jobs=4, max_running_jobs_per_caller=1)
    original = store.table.get_item
    reads: list[str] = []

    def get_item(**kwargs: Any) -> Any:
        answer = original(**kwargs)
        reads.append(kwargs["Key"]["job_id"])
        if len(reads) == 2:  # the first submit has read both items and is about to write
            assert store.take_slot("b" * 32, ALICE) is None  # the second submit, whole
        return answer

    monkeypatch.setattr(store.table, "get_item", get_item)
    assert store.take_slot("a" * 32, ALICE) == "caller"
    slots = store.table.get_item(Key={"job_id": caller_slots(ALICE)})["Item"]["slots"]
    assert list(slots) == ["b" * 32]


# ---- the inline deadline -------------------------------------------------------------------------------------
class SlowStore:
    """A store whose every read takes the longest its budget allows, on a fake clock; the job succeeds at
    `done_at` seconds after the request's arrival."""

    def __init__(self, clock: FakeClock, done_at: float, submit_seconds: float) -> None:
        self.config = BulkConfig(bucket=BUCKET, table=TABLE)
        self.clock = clock
        self.done_at = done_at
        self.submit_seconds = submit_seconds
        self.reads: list[tuple[str, float, float]] = []  # (what, started, ended), seconds after arrival

    def take_slot(self, job_id: str, owner: str) -> None:
        return None

    def create(self, job_id: str, ids: list[str], owner: str) -> Job:
        self.clock.advance(self.submit_seconds)
        return Job(job_id, len(ids), 1, "2026-12-02T10:00:00.000Z", owner=owner)

    def set_execution(self, job: Job, arn: str) -> Job:
        return job

    def get(self, job_id: str, *, quick: bool = False) -> Job:
        assert quick  # polls within the wait use the bounded read
        start = self.clock.elapsed()
        self.clock.advance(POLL_BUDGET.worst)
        self.reads.append(("poll", start, self.clock.elapsed()))
        state = SUCCEEDED if self.clock.elapsed() >= self.done_at else RUNNING
        return Job(job_id, 1, 1, "2026-12-02T10:00:00.000Z", state=state, owner=ALICE)

    def results_lines(self, job_id: str, *, quick: bool = False) -> list[str]:
        assert quick
        start = self.clock.elapsed()
        self.clock.advance(RESULTS_BUDGET.worst)
        self.reads.append(("results", start, self.clock.elapsed()))
        return ['{"id": "a"}']

    def results_url(self, job_id: str) -> str:
        return "https://bulk-bucket.s3.amazonaws.com/jobs/x/results.jsonl?X-Amz-Signature=0"


class FakeClock:
    def __init__(self, arrival: float) -> None:
        self.arrival = arrival
        self.t = arrival

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def elapsed(self) -> float:
        return self.t - self.arrival


class Context:
    """Lambda's context on the fake clock: the bulk function's 120 s timeout from the handler's start."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock, self.deadline = clock, clock.now() + 120

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - self.clock.now()) * 1000)


@pytest.mark.parametrize(
    ("queued", "submit_seconds", "done_at"),
    [
        (0.0, 0.1, 26.0),  # a 26 s job: seen to end by the last poll that can end in time, too late to read
        (0.0, 0.1, 40.0),  # still running at the deadline: 202 with the running job
        (0.0, 8.0, 26.0),  # a slow store: 8 s to store the job, 3 s a poll
        (0.0, 2.0, 23.5),  # done in time to see, too late to read the results: 202 with the finished job
        (4.0, 1.0, 12.0),  # the request waited 4 s in API Gateway before the handler started
        (0.0, 0.1, 5.0),  # a quick job: 200 with the results
    ],
)
def test_the_inline_answer_leaves_before_api_gateway_gives_up(queued: float, submit_seconds: float, done_at: float):
    from sms_status.api import create_bulk_app
    from tests.apigw import rest_event

    clock = FakeClock(arrival=1_764_669_600.0)
    store = SlowStore(clock, done_at, submit_seconds)
    jobs = BulkJobs(store, Started(), Clock(now=clock.now, sleep=clock.sleep))  # type: ignore[arg-type]
    event = rest_event("POST", "/wooxy/status/bulk", body={"ids": ["a"]})
    event["requestContext"]["requestTimeEpoch"] = int(clock.arrival * 1000)
    clock.advance(queued)

    response = create_bulk_app(lambda: jobs).resolve(event, Context(clock))

    assert clock.elapsed() <= 27.0 < 29.0  # API Gateway's own 504 comes at 29 s
    assert all(ended <= 27.0 for _, _, ended in store.reads)
    body = json.loads(response["body"])
    if response["statusCode"] == 200:
        assert body["results"] == [{"id": "a"}]
    else:
        assert response["statusCode"] == 202
        assert body["job_id"]  # the caller can always follow the job
        # still running, or finished too late to read its results in time: then its results_url has them
        assert body["state"] in (RUNNING, SUCCEEDED)
        assert body["state"] == RUNNING or body["results_url"].startswith("https://")

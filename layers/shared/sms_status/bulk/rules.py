"""Wooxy bulk lookups: the rules, pure (no AWS, no clock of their own; docs/bulk.md has the whole flow).

A bulk run is a *job*: its distinct ids are cut into chunks of `CHUNK_SIZE` (Wooxy's per-request limit), each
chunk is one Wooxy request whose reports are stored apart, and the job ends with one results file in request
order. This module decides what goes where and who may see it; `storage.py` does the storing, `executions.py`
talks to Step Functions, `steps.py` runs the state machine's steps and `api.py` the HTTP side.

Ids are never logged (only counts): they are the caller's data.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidRequest, ServiceError
from ..lookup import MAX_BATCH, distinct
from ..model import Provider, ProviderStatus, Report, Status, to_json
from ..validation import parse_id_body

PROVIDER = Provider.WOOXY  # only Wooxy takes 100 ids per request
CHUNK_SIZE = MAX_BATCH  # Wooxy's documented per-request limit
MAX_INLINE_IDS = 10_000  # pinned: POST /wooxy/status/bulk
MAX_JOB_IDS = 100_000  # pinned: POST /wooxy/bulk-jobs
JOB_ID = re.compile(r"[0-9a-f]{32}")

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
EXECUTION_TIMEOUT = 3600  # seconds: the state machine's TimeoutSeconds (a test holds them equal)
# A running job holds a slot of the stack's and of its caller's budget until it finishes or fails; a slot whose
# job died without saying so (a crash between the two writes, a lost Finish) lapses once the job's execution
# cannot be running any more: the execution's timeout plus a margin for the steps that end it.
SLOT_SECONDS = EXECUTION_TIMEOUT + 300
RETRY_AFTER = 30  # seconds a caller over the budget is told to wait (Retry-After): a typical job's length
# Error names a chunk's Lambda task can fail with (errors.py codes), and whether asking again may help.
RETRYABLE_CODES = frozenset({"provider_unavailable", "provider_timeout"})
FINAL_CODES = frozenset({"provider_error", "credentials_error", "invalid_request", "internal_error"})


def parse_body(raw: str | bytes | None, limit: int) -> list[str]:
    """The distinct ids of a body `{"ids": [...]}`, in request order; InvalidRequest naming the problem."""
    _, _, ids = parse_id_body(raw, {"ids": "id"}, limit)
    return distinct(ids)


def chunks(ids: Sequence[str]) -> list[list[str]]:
    """Consecutive slices of at most CHUNK_SIZE ids: chunk i holds ids[i*100:(i+1)*100], so chunk order is request order."""
    return [list(ids[start : start + CHUNK_SIZE]) for start in range(0, len(ids), CHUNK_SIZE)]


def caller_of(request_context: Mapping[str, Any] | None) -> str | None:
    """Who is asking, as API Gateway's SigV4 (AWS_IAM) authorization says: the IAM principal's ARN
    (`identity.userArn`: a user, or `arn:aws:sts::<account>:assumed-role/<role>/<session>`), else its
    `caller` id, else the access key id. None when the request carries no identity (no IAM authorization)."""
    identity = (request_context or {}).get("identity") or {}
    for name in ("userArn", "caller", "accessKey"):
        value = identity.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


STACK_SLOTS = "slots:stack"  # jobs-table items that count running jobs; never a job id (those are 32 hex)


def caller_slots(owner: str) -> str:
    """The key of a caller's running-jobs item: a digest, so the key is short and says nothing of the caller."""
    return "slots:caller:" + hashlib.sha256(owner.encode()).hexdigest()[:40]


def live_slots(slots: Mapping[str, Any], now: float) -> dict[str, int]:
    """The slots (job id -> the epoch second it lapses) still held at `now`."""
    return {job_id: int(until) for job_id, until in slots.items() if int(until) > now}


def new_job_id() -> str:
    return uuid.uuid4().hex


def is_job_id(value: str) -> bool:
    return JOB_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of a job as the state machine hands it to the chunk function: `{"job_id", "index", "ids"}`."""

    job_id: str
    index: int
    ids: list[str]

    @classmethod
    def parse(cls, event: object) -> ChunkTask:
        # Only the state machine sends chunks, after validation: a malformed one is a wiring bug, not caller input.
        if not isinstance(event, dict):
            raise InvalidRequest("a bulk chunk must be an object {job_id, index, ids}")
        job_id, index, ids = event.get("job_id"), event.get("index"), event.get("ids")
        if not isinstance(job_id, str) or not is_job_id(job_id):
            raise InvalidRequest("a bulk chunk needs its job_id")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise InvalidRequest("a bulk chunk needs its index (0, 1, ...)")
        if not isinstance(ids, list) or not 1 <= len(ids) <= CHUNK_SIZE or not all(isinstance(i, str) for i in ids):
            raise InvalidRequest(f"a bulk chunk holds 1 to {CHUNK_SIZE} ids")
        return cls(job_id, index, ids)


@dataclass(frozen=True)
class ChunkFailure:
    """Why a chunk still failed after the state machine's retries; its ids get error reports saying so."""

    code: str  # a pinned error code: what POST /wooxy/status would have answered with
    message: str
    retryable: bool

    @classmethod
    def from_task_error(cls, error_name: str, cause: str | None) -> ChunkFailure:
        """The chunk function names its errors by their pinned code (`named_by_code`) and its Cause is Lambda's
        error JSON. Anything else (throttled past the retries, a timeout, a crash) is a failure of Lambda or Step
        Functions, whose Cause may not be JSON and is never echoed (it can hold a stack trace)."""
        message = None
        try:
            body = json.loads(cause or "")
            message = body.get("errorMessage") if isinstance(body, dict) else None
        except ValueError:
            pass
        if error_name in RETRYABLE_CODES | FINAL_CODES and isinstance(message, str):
            return cls(error_name, message, error_name in RETRYABLE_CODES)
        return cls("internal_error", f"the Wooxy function could not look up this chunk ({error_name})", True)

    def reports(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """One report per id, shaped like `lookup.error_report`: status unknown, not final, the error inside."""
        error = {"code": self.code, "message": self.message, "details": None}
        return [
            Report(
                provider=PROVIDER,
                id=key,
                status=Status.UNKNOWN,
                final=False,
                retryable=self.retryable,
                provider_status=ProviderStatus(self.code, self.message),
                details={"error": error},
            ).to_dict()
            for key in ids
        ]


def named_by_code(error: ServiceError) -> Exception:
    """The same failure as an exception whose class name is the pinned error code (provider_unavailable, ...).

    Step Functions names a Lambda error after its exception class; so named, the state machine's Retry/Catch
    and the error reports of a failed chunk use the codes POST /wooxy/status would have answered with.
    """
    return type(error.code, (Exception,), {})(error.message)


def to_lines(reports: Iterable[dict[str, Any]]) -> list[str]:
    """JSON Lines, one report per line (compact: a 100,000-line file is read by people and programs alike)."""
    return [to_json(report, compact=True) for report in reports]


def count_statuses(statuses: Iterable[str]) -> dict[str, int]:
    return dict(Counter(statuses))


LOST_CHUNK = ChunkFailure("internal_error", "this chunk was not looked up (its answer was lost)", True)


def merge_results(parts: Sequence[Sequence[str] | None], chunk_ids: Sequence[Sequence[str]] | None = None) -> list[str]:
    """The results file's lines in request order: each chunk's lines, by index. A chunk with no file (its failure
    could not even be recorded) gets `LOST_CHUNK` error reports for its ids (`chunk_ids[index]`), so the results
    always hold one report per distinct id. `chunk_ids` is needed only when a part is missing."""
    lines: list[str] = []
    for index, part in enumerate(parts):
        if part is None:
            if chunk_ids is None:
                raise ValueError(f"chunk {index} has no reports and no ids were given for it")
            part = to_lines(LOST_CHUNK.reports(chunk_ids[index]))
        lines.extend(part)
    return lines


@dataclass
class Job:
    """A job as stored (one item per job) and shown (`document`)."""

    job_id: str
    total: int
    chunk_count: int
    created_at: str
    state: str = RUNNING
    done: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    finished_at: str | None = None
    execution_arn: str | None = None
    owner: str | None = None  # the caller that submitted it (`caller_of`); never shown
    expires_at: int | None = None  # epoch seconds: its data is deleted from then on (BulkRetentionDays)

    def visible_to(self, caller: str | None, now: float) -> bool:
        """Only its owner sees a job, and only while its data lasts (the table's TTL deletes late)."""
        return caller is not None and self.owner == caller and (self.expires_at is None or now < self.expires_at)

    def document(self, results_url: str | None = None) -> dict[str, Any]:
        """The pinned job document. `counts` keeps the order of the normalized statuses, zeros left out."""
        order = {str(status): rank for rank, status in enumerate(Status)}
        counts = {status: int(n) for status, n in sorted(self.counts.items(), key=lambda kv: order.get(kv[0], 99)) if n}
        return {
            "job_id": self.job_id,
            "provider": str(PROVIDER),
            "state": self.state,
            "total": self.total,
            "done": self.done,
            "counts": counts,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "results_url": results_url if self.state == SUCCEEDED else None,
        }

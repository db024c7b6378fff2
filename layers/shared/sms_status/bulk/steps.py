"""The bulk state machine's steps (statemachine/wooxy_bulk.asl.json): look up a chunk (the chunk function),
record a failed chunk, finish, fail (the bulk function). Their payloads are the state machine's contract."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ServiceError
from ..model import parse_iso
from ..observability import emit, logger
from .lifecycle import BulkJobs
from .rules import PROVIDER, SUCCEEDED, ChunkFailure, ChunkTask, Job, named_by_code
from .storage import JobStore


def count_job(job: Job) -> None:
    """The metrics of a finished job: its ids, how long it took, its reports per status."""
    provider = str(PROVIDER)
    emit("BulkJobIds", job.total, provider=provider)
    started, finished = parse_iso(job.created_at), parse_iso(job.finished_at)
    if started and finished:
        emit("BulkJobDuration", (finished - started).total_seconds(), provider=provider)
    for status, count in job.counts.items():
        emit("BulkJobReports", count, provider=provider, status=status)


def run_chunk(event: object, look_up: Callable[[list[str]], list[Any]], store: JobStore) -> dict[str, int]:
    """The chunk function's task `{"bulk_chunk": {job_id, index, ids}}`: one Wooxy request, its reports stored.

    Provider failures are raised, named by their pinned code (`rules.named_by_code`), so the state machine's
    Retry/Catch can tell a Wooxy outage (retried) from a refusal; once retries are spent its Catch sends the
    chunk to `record_failed_chunk`. The answer is a count, never the reports: payloads stay small.
    """
    task = ChunkTask.parse(event)
    try:
        reports = [report.to_dict() for report in look_up(task.ids)]
    except ServiceError as error:
        raise named_by_code(error) from error
    store.record_chunk(task.job_id, task.index, reports)
    return {"count": len(reports)}


def run_step(event: Mapping[str, Any], jobs: BulkJobs) -> dict[str, Any]:
    """The bulk function's tasks (no provider calls): a failed chunk's error reports, finishing, failing."""
    if "bulk_failed_chunk" in event:
        step = event["bulk_failed_chunk"]
        task = ChunkTask.parse(step)
        failure = ChunkFailure.from_task_error(str(step.get("error") or "States.Unknown"), step.get("cause"))
        jobs.store.record_chunk(task.job_id, task.index, failure.reports(task.ids))
        logger.warning(
            "bulk chunk failed",
            extra={"job_id": task.job_id, "index": task.index, "error_code": failure.code, "task_error": step.get("error")},
        )
        return {"count": len(task.ids)}
    if "bulk_finish" in event:
        job = jobs.finish(str(event["bulk_finish"]["job_id"]))
        logger.info("bulk job finished", extra={"job_id": job.job_id, "state": job.state, "total": job.total, "counts": job.counts})
        if job.state == SUCCEEDED:
            count_job(job)
        return {"job_id": job.job_id, "total": job.total}
    if "bulk_job_failed" in event:
        job_id = str(event["bulk_job_failed"]["job_id"])
        jobs.fail(job_id)
        logger.error("bulk job failed", extra={"job_id": job_id, "error": event["bulk_job_failed"].get("error")})
        return {"job_id": job_id}
    raise ValueError(f"not a bulk step: {sorted(event)}")

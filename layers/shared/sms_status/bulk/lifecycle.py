"""A bulk job's life across its storage and its execution: submitted within the running-jobs budget, seen by its
owner only, waited for within API Gateway's deadline, finished or failed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import TooManyJobs
from ..observability import logger
from .executions import Executions
from .rules import RETRY_AFTER, RUNNING, Job, is_job_id, new_job_id
from .storage import POLL_BUDGET, RESULTS_BUDGET, JobStore

# API Gateway answers 504 itself 29 s after a request arrived, whatever the function does. The inline route's
# answer leaves by ANSWER_WITHIN seconds after arrival: the rest is for it to travel back through API Gateway.
API_GATEWAY_TIMEOUT = 29.0
ANSWER_WITHIN = 27.0


@dataclass(frozen=True)
class Clock:
    """Wall-clock time (API Gateway's requestTimeEpoch is wall-clock too) and sleeping; tests pass a fake one."""

    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


SYSTEM_CLOCK = Clock()


def arrival_of(request_time_epoch_ms: object, started: float) -> float:
    """When the request reached API Gateway: `requestContext.requestTimeEpoch` (milliseconds), else (absent, or
    later than the handler's start: another clock) when the handler started."""
    if isinstance(request_time_epoch_ms, int | float) and not isinstance(request_time_epoch_ms, bool) and request_time_epoch_ms > 0:
        return min(started, request_time_epoch_ms / 1000)
    return started


def answer_by(arrival: float, started: float, remaining: float | None = None) -> float:
    """When the inline answer must leave: ANSWER_WITHIN seconds after the request's arrival, and never later than
    the function's own remaining time allows (`remaining` seconds from `started`, less one)."""
    deadline = arrival + ANSWER_WITHIN
    if remaining is not None:
        deadline = min(deadline, started + remaining - 1.0)
    return deadline


class BulkJobs:
    def __init__(self, store: JobStore, executions: Executions | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store = store
        self.executions = executions
        self.clock = clock

    def submit(self, ids: list[str], owner: str) -> Job:
        """A new job of `owner`'s, within the running-jobs budget (TooManyJobs beyond it), stored and started.
        One that cannot be stored or started is failed at once (its slots given back), never left running."""
        job_id = new_job_id()
        full = self.store.take_slot(job_id, owner)
        if full is not None:
            limit = self.store.config.max_running_jobs if full == "stack" else self.store.config.max_running_jobs_per_caller
            whose = "this stack runs" if full == "stack" else "you run"
            logger.info("bulk job refused: budget", extra={"scope": full, "limit": limit})
            raise TooManyJobs(
                f"{whose} as many bulk jobs at once as allowed ({limit}); try again later",
                {"scope": full, "limit": limit, "retry_after": RETRY_AFTER},
                RETRY_AFTER,
            )
        try:
            job = self.store.create(job_id, ids, owner)
        except Exception:
            self.store.release_slot(job_id, owner)
            raise
        try:
            if self.executions is None:
                raise RuntimeError("this function cannot start bulk jobs (no BULK_STATE_MACHINE_ARN)")
            return self.store.set_execution(job, self.executions.start(job.job_id))
        except Exception:
            self.fail(job.job_id)
            raise

    def visible(self, job_id: str, caller: str | None) -> Job | None:
        """The job, if `caller` owns it and its data has not expired; else None, exactly as for a job that never
        was (another caller learns nothing, not even that the id exists)."""
        job = self.store.get(job_id) if is_job_id(job_id) else None
        if job is None or not job.visible_to(caller, self.clock.now()):
            return None
        return self.refresh(job)

    def refresh(self, job: Job) -> Job:
        """A running job whose execution has ended without finishing it (timed out, aborted, failed before it could
        say so) is failed: asking Step Functions is the only way to know."""
        if job.state != RUNNING or not job.execution_arn or self.executions is None:
            return job
        if self.executions.ended_unfinished(job.execution_arn):
            self.fail(job.job_id)
            return self.store.get(job.job_id) or job
        return job

    def finish(self, job_id: str) -> Job:
        return self.store.finish(job_id)

    def fail(self, job_id: str) -> bool:
        return self.store.fail(job_id)

    # ---- the inline route's wait ----
    def wait(self, job: Job, until: float, wait_until: float | None = None) -> Job:
        """Poll the job item until the job is no longer running, or until no further poll could end by `until`
        (each poll is one attempt within POLL_BUDGET, so its worst case is known), or `wait_until` has passed."""
        pause = 0.05
        last_start = until - POLL_BUDGET.worst
        if wait_until is not None:
            last_start = min(last_start, wait_until)
        while job.state == RUNNING:
            if self.clock.now() + pause > last_start:
                return job
            self.clock.sleep(pause)
            pause = min(pause * 1.5, 0.5)  # quick answers for small jobs, few reads for large ones
            try:
                job = self.store.get(job.job_id, quick=True) or job
            except Exception as error:  # a slow or failed poll: the job as last seen, the next poll if there is time
                logger.warning("bulk poll failed", extra={"job_id": job.job_id, "error": type(error).__name__})
        return job

    def results_in_time(self, job: Job, until: float) -> list[str] | None:
        """The results file's lines, if a read within RESULTS_BUDGET can end by `until`; else None."""
        if self.clock.now() + RESULTS_BUDGET.worst > until:
            return None
        try:
            return self.store.results_lines(job.job_id, quick=True)
        except Exception as error:
            logger.warning("bulk results not read in time", extra={"job_id": job.job_id, "error": type(error).__name__})
            return None

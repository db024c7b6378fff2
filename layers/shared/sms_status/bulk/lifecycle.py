"""A bulk job's life across its storage and its execution: submitted, watched, finished or failed."""

from __future__ import annotations

import time
from collections.abc import Callable

from .executions import Executions
from .rules import RUNNING, Job
from .storage import JobStore


class BulkJobs:
    def __init__(self, store: JobStore, executions: Executions | None = None) -> None:
        self.store = store
        self.executions = executions

    def submit(self, ids: list[str]) -> Job:
        """A new job, stored and started. One that cannot be started is failed at once, never left running."""
        job = self.store.create(ids)
        try:
            if self.executions is None:
                raise RuntimeError("this function cannot start bulk jobs (no BULK_STATE_MACHINE_ARN)")
            return self.store.set_execution(job, self.executions.start(job.job_id))
        except Exception:
            self.fail(job.job_id)
            raise

    def get(self, job_id: str) -> Job | None:
        return self.store.get(job_id)

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

    def fail(self, job_id: str) -> None:
        self.store.fail(job_id)


def wait_for(jobs: BulkJobs, job: Job, seconds: float, sleep: Callable[[float], None] = time.sleep) -> Job:
    """Poll the job item until the job is no longer running or `seconds` have passed (then the job as it is)."""
    deadline = time.monotonic() + seconds
    pause = 0.05
    while job.state == RUNNING:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return job
        sleep(min(pause, remaining))
        pause = min(pause * 1.5, 0.5)  # quick answers for small jobs, few reads for large ones
        job = jobs.get(job.job_id) or job
    return job

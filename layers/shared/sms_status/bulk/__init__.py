"""Wooxy bulk lookups and jobs (docs/bulk.md), in parts named for what they do:

- `rules`: pure: validation, chunks, job ids, the job document, counts, the merge of chunk results;
- `storage`: the job's S3 objects and its item in the jobs table;
- `executions`: the job's Step Functions execution;
- `lifecycle`: a job across both (submit, watch, finish, fail);
- `steps`: the state machine's steps (a chunk, a failed chunk, finish, fail).

The routes (`api.create_bulk_app`) and the two functions import from here.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..aws import client
from ..config import BulkConfig
from .executions import Executions
from .lifecycle import SYSTEM_CLOCK, BulkJobs, Clock, answer_by, arrival_of
from .rules import FAILED, MAX_INLINE_IDS, MAX_JOB_IDS, RUNNING, SUCCEEDED, Job, caller_of, is_job_id, parse_body
from .steps import run_chunk, run_step
from .storage import STORE_BUDGET, JobStore

__all__ = [
    "FAILED",
    "MAX_INLINE_IDS",
    "MAX_JOB_IDS",
    "RUNNING",
    "SUCCEEDED",
    "SYSTEM_CLOCK",
    "BulkJobs",
    "Clock",
    "Job",
    "JobStore",
    "answer_by",
    "arrival_of",
    "bulk_jobs",
    "caller_of",
    "is_job_id",
    "parse_body",
    "run_chunk",
    "run_step",
]


def bulk_jobs(env: Mapping[str, str]) -> BulkJobs:
    """The jobs of a function's settings, kept while its container is warm (functions/bulk and wooxy_chunks).
    Only the bulk function's settings name the state machine, so only it can start jobs."""
    config = BulkConfig.from_env(env)
    store = JobStore.from_config(config)
    executions = None
    if config.state_machine_arn:
        executions = Executions(client("stepfunctions", STORE_BUDGET), config.state_machine_arn)
    return BulkJobs(store, executions)

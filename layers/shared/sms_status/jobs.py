"""Bulk jobs on AWS: where each piece of a job lives, and the steps that move it (docs/bulk.md).

S3 (the bulk bucket), under `jobs/<job_id>/`:
- `chunks.json`: the distinct ids cut into 100-id chunks, a JSON array of arrays: the state machine's ItemReader.
- `chunks/<index>.jsonl`: the reports of one chunk, one per line, written by whoever answered it.
- `results.jsonl`: every report in request order, written once at the end: what `results_url` serves.
DynamoDB (the jobs table), one item per job: state, totals, running counts, the chunks already counted.

States and Lambda payloads carry the job id and a chunk's ids, never reports, so no payload grows with the job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import cache
from typing import Any

from .bulk import FAILED, PROVIDER, RUNNING, SUCCEEDED, ChunkFailure, ChunkTask, Job, chunks, count_statuses, new_job_id, to_lines
from .config import BulkConfig
from .model import iso, parse_iso, utcnow
from .observability import emit, logger

READ_THREADS = 16  # chunk files fetched at once when a job is finished (1,000 small GETs for 100,000 ids)


def _keys(job_id: str) -> tuple[str, str]:
    return f"jobs/{job_id}/chunks.json", f"jobs/{job_id}/results.jsonl"


def chunk_key(job_id: str, index: int) -> str:
    return f"jobs/{job_id}/chunks/{index:05d}.jsonl"


class JobStore:
    """The job's S3 objects and its DynamoDB item, through boto3 (created lazily: only bulk code pays for it)."""

    def __init__(self, config: BulkConfig, s3: Any, table: Any, sfn: Any = None, presigner: Any = None) -> None:
        self.config = config
        self.s3 = s3
        self.table = table
        self.sfn = sfn
        self.presigner = presigner or s3

    @classmethod
    def from_config(cls, config: BulkConfig) -> JobStore:
        import boto3
        from botocore.config import Config

        # Bounded calls: every AWS request here ends within seconds, so a stuck one cannot eat the 25 s wait.
        bounded = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
        s3 = boto3.client("s3", config=bounded.merge(Config(signature_version="s3v4")))  # SigV4 presigned URLs
        presigner = None
        if config.results_endpoint:  # the local run: a URL the caller can fetch from 127.0.0.1
            path_style = Config(signature_version="s3v4", s3={"addressing_style": "path"})
            presigner = boto3.client("s3", endpoint_url=config.results_endpoint, config=path_style)
        sfn = boto3.client("stepfunctions", config=bounded) if config.state_machine_arn else None
        table = boto3.resource("dynamodb", config=bounded).Table(config.table)
        return cls(config, s3, table, sfn, presigner)

    # ---- the job item ----
    def create(self, ids: list[str]) -> Job:
        """Store the chunks and the item of a new job (the state machine is started by `start`)."""
        parts = chunks(ids)
        job = Job(job_id=new_job_id(), total=len(ids), chunk_count=len(parts), created_at=iso(utcnow()) or "")
        chunks_key, _ = _keys(job.job_id)
        self.s3.put_object(Bucket=self.config.bucket, Key=chunks_key, Body=json.dumps(parts).encode(), ContentType="application/json")
        expires_at = int(time.time()) + self.config.retention_days * 86_400
        item = {
            "job_id": job.job_id,
            "state": RUNNING,
            "total": job.total,
            "chunk_count": job.chunk_count,
            "done": 0,
            "counts": {},
            "created_at": job.created_at,
            "expires_at": expires_at,
        }
        self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(job_id)")
        return job

    def start(self, job: Job) -> Job:
        """Start the job's execution, named after the job (a second start of the same job is refused by AWS)."""
        started = self.sfn.start_execution(
            stateMachineArn=self.config.state_machine_arn, name=job.job_id, input=json.dumps({"job_id": job.job_id})
        )
        job.execution_arn = started["executionArn"]
        self.table.update_item(
            Key={"job_id": job.job_id},
            UpdateExpression="SET execution_arn = :arn",
            ExpressionAttributeValues={":arn": job.execution_arn},
        )
        return job

    def submit(self, ids: list[str]) -> Job:
        """A new job, stored and started. One that cannot be started is failed at once, never left running."""
        job = self.create(ids)
        try:
            return self.start(job)
        except Exception:
            self.fail(job.job_id)
            raise

    def get(self, job_id: str) -> Job | None:
        item = self.table.get_item(
            Key={"job_id": job_id},
            ConsistentRead=True,
            # Not chunks_done: up to 1,000 numbers that only the counting update needs, read on every poll.
            ProjectionExpression="job_id, #state, #total, chunk_count, done, counts, created_at, finished_at, execution_arn",
            ExpressionAttributeNames={"#state": "state", "#total": "total"},
        ).get("Item")
        if item is None:
            return None
        return Job(
            job_id=item["job_id"],
            total=int(item["total"]),
            chunk_count=int(item["chunk_count"]),
            created_at=item["created_at"],
            state=item["state"],
            done=int(item.get("done", 0)),
            counts={status: int(n) for status, n in (item.get("counts") or {}).items()},
            finished_at=item.get("finished_at"),
            execution_arn=item.get("execution_arn"),
        )

    def record_chunk(self, job_id: str, index: int, reports: list[dict[str, Any]]) -> None:
        """Store one chunk's reports and add them to the running counts, once per chunk whatever retries do."""
        body = "\n".join(to_lines(reports)) + "\n"
        self.s3.put_object(Bucket=self.config.bucket, Key=chunk_key(job_id, index), Body=body.encode(), ContentType="application/x-ndjson")
        counts = count_statuses(report["status"] for report in reports)
        names = {f"#s{n}": status for n, status in enumerate(counts)}
        values: dict[str, Any] = {f":c{n}": count for n, count in enumerate(counts.values())}
        sets = ", ".join(f"counts.#s{n} = if_not_exists(counts.#s{n}, :zero) + :c{n}" for n in range(len(counts)))
        try:
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=f"SET done = done + :n, {sets} ADD chunks_done :index_set",
                ConditionExpression="attribute_exists(job_id) AND NOT contains(chunks_done, :index)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, ":n": len(reports), ":zero": 0, ":index": index, ":index_set": {index}},
            )
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            logger.info("bulk chunk already counted", extra={"job_id": job_id, "index": index})

    # ---- finishing ----
    def finish(self, job_id: str) -> Job:
        """Merge the chunk files into results.jsonl in request order and mark the job succeeded.

        A chunk with no file (its failure could not even be recorded) gets internal_error reports here, so the
        results always hold one report per distinct id.
        """
        job = self.get(job_id)
        if job is None:
            raise LookupError(f"no bulk job {job_id}")
        with ThreadPoolExecutor(READ_THREADS) as pool:
            parts = list(pool.map(lambda index: self._chunk_lines(job_id, index), range(job.chunk_count)))
        if any(part is None for part in parts):
            ids = self._chunk_ids(job_id)
            failure = ChunkFailure("internal_error", "this chunk was not looked up (its answer was lost)", True)
            parts = [part if part is not None else to_lines(failure.reports(ids[n])) for n, part in enumerate(parts)]
        lines = [line for part in parts for line in part or ()]
        _, results_key = _keys(job_id)
        self.s3.put_object(
            Bucket=self.config.bucket, Key=results_key, Body=("\n".join(lines) + "\n").encode(), ContentType="application/x-ndjson"
        )
        job.counts = count_statuses(json.loads(line)["status"] for line in lines)
        job.done, job.state, job.finished_at = len(lines), SUCCEEDED, iso(utcnow())
        self.table.update_item(
            Key={"job_id": job_id},
            UpdateExpression="SET #state = :state, done = :done, counts = :counts, finished_at = :at REMOVE chunks_done",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":state": SUCCEEDED, ":done": job.done, ":counts": job.counts, ":at": job.finished_at},
        )
        return job

    def fail(self, job_id: str) -> None:
        """Mark a running job failed (its execution failed, timed out or was stopped)."""
        # Not running any more (the condition fails): whatever ended it is the answer.
        with suppress(self.table.meta.client.exceptions.ConditionalCheckFailedException):
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET #state = :failed, finished_at = :at",
                ConditionExpression="#state = :running",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":failed": FAILED, ":running": RUNNING, ":at": iso(utcnow())},
            )

    def refresh(self, job: Job) -> Job:
        """A running job whose execution has ended without finishing it (timed out, aborted, failed before it could
        say so) is failed: asking Step Functions is the only way to know."""
        if job.state != RUNNING or not job.execution_arn or self.sfn is None:
            return job
        status = self.sfn.describe_execution(executionArn=job.execution_arn)["status"]
        if status in ("FAILED", "TIMED_OUT", "ABORTED"):
            self.fail(job.job_id)
            return self.get(job.job_id) or job
        return job

    # ---- reading ----
    def results_lines(self, job_id: str) -> list[str]:
        _, results_key = _keys(job_id)
        body = self.s3.get_object(Bucket=self.config.bucket, Key=results_key)["Body"].read().decode()
        return body.splitlines()

    def results_url(self, job_id: str) -> str:
        _, results_key = _keys(job_id)
        return self.presigner.generate_presigned_url(
            "get_object", Params={"Bucket": self.config.bucket, "Key": results_key}, ExpiresIn=self.config.results_url_ttl
        )

    def _chunk_lines(self, job_id: str, index: int) -> list[str] | None:
        try:
            body = self.s3.get_object(Bucket=self.config.bucket, Key=chunk_key(job_id, index))["Body"].read().decode()
        except self.s3.exceptions.NoSuchKey:
            return None
        return body.splitlines()

    def _chunk_ids(self, job_id: str) -> list[list[str]]:
        chunks_key, _ = _keys(job_id)
        return json.loads(self.s3.get_object(Bucket=self.config.bucket, Key=chunks_key)["Body"].read())


def wait_for(store: JobStore, job: Job, seconds: float, sleep: Callable[[float], None] = time.sleep) -> Job:
    """Poll the job item until the job is no longer running or `seconds` have passed (then the job as it is)."""
    deadline = time.monotonic() + seconds
    pause = 0.05
    while job.state == RUNNING:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return job
        sleep(min(pause, remaining))
        pause = min(pause * 1.5, 0.5)  # quick answers for small jobs, few reads for large ones
        job = store.get(job.job_id) or job
    return job


def job_store() -> JobStore:
    """The store for this function's settings. Cached per settings rather than once per process: the local run
    hosts every function in one process, and only the bulk function's settings can start jobs."""
    from .config import ConfigError
    from .errors import ServiceError

    try:
        return _store_for(BulkConfig.from_env())
    except ConfigError as exc:
        raise ServiceError(f"configuration error: {exc}") from exc


@cache
def _store_for(config: BulkConfig) -> JobStore:
    return JobStore.from_config(config)


def count_job(job: Job) -> None:
    """The metrics of a finished job: its ids, how long it took, its reports per status."""
    provider = str(PROVIDER)
    emit("BulkJobIds", job.total, provider=provider)
    started, finished = parse_iso(job.created_at), parse_iso(job.finished_at)
    if started and finished:
        emit("BulkJobDuration", (finished - started).total_seconds(), provider=provider)
    for status, count in job.counts.items():
        emit("BulkJobReports", count, provider=provider, status=status)


# ---- the state machine's tasks ---------------------------------------------------------------------------------
def run_chunk(event: object, look_up: Callable[[list[str]], list[Any]]) -> dict[str, int]:
    """The chunk function's task `{"bulk_chunk": {job_id, index, ids}}`: one Wooxy request, its reports stored.

    Provider failures are raised, named by their pinned code (`bulk.named_by_code`), so the state machine's
    Retry/Catch can tell a Wooxy outage (retried) from a refusal; once retries are spent its Catch sends the
    chunk to `record_failed_chunk`. The answer is a count, never the reports: payloads stay small.
    """
    from .bulk import named_by_code
    from .errors import ServiceError

    task = ChunkTask.parse(event)
    try:
        reports = [report.to_dict() for report in look_up(task.ids)]
    except ServiceError as error:
        raise named_by_code(error) from error
    job_store().record_chunk(task.job_id, task.index, reports)
    return {"count": len(reports)}


def run_step(event: Mapping[str, Any]) -> dict[str, Any]:
    """The bulk function's tasks (no provider calls): a failed chunk's error reports, finishing, failing."""
    store = job_store()
    if "bulk_failed_chunk" in event:
        step = event["bulk_failed_chunk"]
        task = ChunkTask.parse(step)
        failure = ChunkFailure.from_task_error(str(step.get("error") or "States.Unknown"), step.get("cause"))
        store.record_chunk(task.job_id, task.index, failure.reports(task.ids))
        logger.warning(
            "bulk chunk failed",
            extra={"job_id": task.job_id, "index": task.index, "error_code": failure.code, "task_error": step.get("error")},
        )
        return {"count": len(task.ids)}
    if "bulk_finish" in event:
        job = store.finish(str(event["bulk_finish"]["job_id"]))
        logger.info("bulk job finished", extra={"job_id": job.job_id, "total": job.total, "counts": job.counts})
        count_job(job)
        return {"job_id": job.job_id, "total": job.total}
    if "bulk_job_failed" in event:
        job_id = str(event["bulk_job_failed"]["job_id"])
        store.fail(job_id)
        logger.error("bulk job failed", extra={"job_id": job_id, "error": event["bulk_job_failed"].get("error")})
        return {"job_id": job_id}
    raise ValueError(f"not a bulk step: {sorted(event)}")

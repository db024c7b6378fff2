"""Bulk jobs' storage: where each piece of a job lives, in S3 and the jobs table (docs/bulk.md).

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
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from ..config import BulkConfig
from ..model import iso, utcnow
from ..observability import logger
from .rules import FAILED, RUNNING, SUCCEEDED, Job, chunks, count_statuses, merge_results, new_job_id, to_lines

READ_THREADS = 16  # chunk files fetched at once when a job is finished (1,000 small GETs for 100,000 ids)


def _keys(job_id: str) -> tuple[str, str]:
    return f"jobs/{job_id}/chunks.json", f"jobs/{job_id}/results.jsonl"


def chunk_key(job_id: str, index: int) -> str:
    return f"jobs/{job_id}/chunks/{index:05d}.jsonl"


class JobStore:
    """The job's S3 objects and its DynamoDB item, through boto3 (created lazily: only bulk code pays for it)."""

    def __init__(self, config: BulkConfig, s3: Any, table: Any, presigner: Any = None) -> None:
        self.config = config
        self.s3 = s3
        self.table = table
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
        table = boto3.resource("dynamodb", config=bounded).Table(config.table)
        return cls(config, s3, table, presigner)

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

    def set_execution(self, job: Job, execution_arn: str) -> Job:
        job.execution_arn = execution_arn
        self.table.update_item(
            Key={"job_id": job.job_id},
            UpdateExpression="SET execution_arn = :arn",
            ExpressionAttributeValues={":arn": execution_arn},
        )
        return job

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
        lines = merge_results(parts, self._chunk_ids(job_id) if None in parts else None)
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

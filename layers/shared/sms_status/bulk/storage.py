"""Bulk jobs' storage: where each piece of a job lives, in S3 and the jobs table (docs/bulk.md).

S3 (the bulk bucket), under `jobs/<job_id>/`:
- `chunks.json`: the distinct ids cut into 100-id chunks, a JSON array of arrays: the state machine's ItemReader.
- `chunks/<index>.jsonl`: the reports of one chunk, one per line, written by whoever answered it.
- `results.jsonl`: every report in request order, written once at the end: what `results_url` serves.
DynamoDB (the jobs table), one item per job: owner, state, totals, running counts, the chunks already counted;
and the running-jobs items (`slots:stack`, `slots:caller:<digest>`): job id -> the second its slot lapses.

States and Lambda payloads carry the job id and a chunk's ids, never reports, so no payload grows with the job.
"""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..aws import CallBudget, client, resource
from ..config import BulkConfig
from ..model import iso, utcnow
from ..observability import logger
from .rules import (
    FAILED,
    RUNNING,
    SLOT_SECONDS,
    STACK_SLOTS,
    SUCCEEDED,
    Job,
    caller_slots,
    chunks,
    count_statuses,
    live_slots,
    merge_results,
    to_lines,
)

READ_THREADS = 16  # chunk files fetched at once when a job is finished (1,000 small GETs for 100,000 ids)
# Calls made while a caller waits for its answer (the inline route's polls and its results read): one attempt
# each, short timeouts, so the wait knows the worst each can take and starts none that could end too late.
POLL_BUDGET = CallBudget(connect_timeout=1.0, read_timeout=2.0, attempts=1)
RESULTS_BUDGET = CallBudget(connect_timeout=1.0, read_timeout=3.0, attempts=1)
# Everything else (storing, starting, the state machine's steps): bounded, with retries.
STORE_BUDGET = CallBudget(connect_timeout=2.0, read_timeout=5.0, attempts=3)
SLOT_ATTEMPTS = 5  # concurrent submits that met at a running-jobs item each read it again, this many times


def _keys(job_id: str) -> tuple[str, str]:
    return f"jobs/{job_id}/chunks.json", f"jobs/{job_id}/results.jsonl"


def chunk_key(job_id: str, index: int) -> str:
    return f"jobs/{job_id}/chunks/{index:05d}.jsonl"


def _job(item: dict[str, Any]) -> Job:
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
        owner=item.get("owner"),
        expires_at=int(item["expires_at"]) if item.get("expires_at") is not None else None,
    )


class JobStore:
    """The job's S3 objects and its DynamoDB item, through boto3 (created lazily: only bulk code pays for it)."""

    def __init__(self, config: BulkConfig, s3: Any, table: Any, quick_s3: Any = None, quick_table: Any = None) -> None:
        self.config = config
        self.s3 = s3  # also signs results_url (SigV4)
        self.table = table
        self.quick_s3 = quick_s3 or s3  # POLL/RESULTS budgets: reads made while a caller waits
        self.quick_table = quick_table or table

    @classmethod
    def from_config(cls, config: BulkConfig) -> JobStore:
        s3 = client("s3", STORE_BUDGET)  # SigV4 (s3v4): presigned URLs
        table = resource("dynamodb", STORE_BUDGET).Table(config.table)
        quick_table = resource("dynamodb", POLL_BUDGET).Table(config.table)
        return cls(config, s3, table, client("s3", RESULTS_BUDGET), quick_table)

    # ---- the job item ----
    def create(self, job_id: str, ids: list[str], owner: str) -> Job:
        """Store the chunks and the item of a new job (its execution is started apart)."""
        parts = chunks(ids)
        expires_at = int(time.time()) + self.config.retention_days * 86_400
        job = Job(job_id, len(ids), len(parts), iso(utcnow()) or "", owner=owner, expires_at=expires_at)
        chunks_key, _ = _keys(job.job_id)
        self.s3.put_object(Bucket=self.config.bucket, Key=chunks_key, Body=json.dumps(parts).encode(), ContentType="application/json")
        item = {
            "job_id": job.job_id,
            "owner": owner,
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

    def get(self, job_id: str, *, quick: bool = False) -> Job | None:
        """The job's item (consistent read); `quick`: one attempt within POLL_BUDGET, for a waiting caller."""
        item = (
            (self.quick_table if quick else self.table)
            .get_item(
                Key={"job_id": job_id},
                ConsistentRead=True,
                # Not chunks_done: up to 1,000 numbers that only the counting update needs, read on every poll.
                ProjectionExpression="job_id, #owner, #state, #total, chunk_count, done, counts, created_at, finished_at, "
                "execution_arn, expires_at",
                ExpressionAttributeNames={"#owner": "owner", "#state": "state", "#total": "total"},
            )
            .get("Item")
        )
        if item is None or "state" not in item:
            return None
        return _job(item)

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
        """Merge the chunk files into results.jsonl in request order and mark the job succeeded, if it is still
        running: a job already failed (its submit failed after the execution started, a GET saw its execution
        end) stays failed, so a caller who was told "failed" and submitted again never has two jobs done.

        A chunk with no file (its failure could not even be recorded) gets internal_error reports here, so the
        results always hold one report per distinct id.
        """
        job = self.get(job_id)
        if job is None:
            raise LookupError(f"no bulk job {job_id}")
        if job.state != RUNNING:
            logger.warning("bulk job not running; not finished", extra={"job_id": job_id, "state": job.state})
            return job
        with ThreadPoolExecutor(READ_THREADS) as pool:
            parts = list(pool.map(lambda index: self._chunk_lines(job_id, index), range(job.chunk_count)))
        lines = merge_results(parts, self._chunk_ids(job_id) if None in parts else None)
        _, results_key = _keys(job_id)
        self.s3.put_object(
            Bucket=self.config.bucket, Key=results_key, Body=("\n".join(lines) + "\n").encode(), ContentType="application/x-ndjson"
        )
        counts = count_statuses(json.loads(line)["status"] for line in lines)
        finished_at = iso(utcnow())
        try:
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET #state = :state, done = :done, counts = :counts, finished_at = :at REMOVE chunks_done",
                ConditionExpression="#state = :running",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":state": SUCCEEDED,
                    ":running": RUNNING,
                    ":done": len(lines),
                    ":counts": counts,
                    ":at": finished_at,
                },
            )
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            logger.warning("bulk job ended while finishing; not finished", extra={"job_id": job_id})
            return self.get(job_id) or job
        job.counts, job.done, job.state, job.finished_at = counts, len(lines), SUCCEEDED, finished_at
        self.release_slot(job_id, job.owner)
        return job

    def fail(self, job_id: str) -> bool:
        """Mark a running job failed (its execution failed, timed out or was stopped); False if it was not running
        (the condition fails): whatever ended it is the answer."""
        try:
            item = self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET #state = :failed, finished_at = :at",
                ConditionExpression="#state = :running",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":failed": FAILED, ":running": RUNNING, ":at": iso(utcnow())},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        self.release_slot(job_id, item.get("owner"))
        return True

    # ---- running-jobs budget ----
    def take_slot(self, job_id: str, owner: str, now: float | None = None) -> str | None:
        """Count `job_id` as running for the stack and for `owner`, if both are under their limits. None when
        taken; else the scope that is full ("stack" or "caller").

        Each running-jobs item holds the slots (job id -> lapse time) and a version. A submit reads both items,
        drops lapsed slots, and writes both back in one transaction conditional on the versions it read: of two
        submits that read the same versions, one transaction fails and that submit reads again, so no two can
        both take the last slot. Releases bump the version too.
        """
        limits = (
            (STACK_SLOTS, self.config.max_running_jobs, "stack"),
            (caller_slots(owner), self.config.max_running_jobs_per_caller, "caller"),
        )
        dynamodb = self.table.meta.client
        for attempt in range(SLOT_ATTEMPTS):
            moment = time.time() if now is None else now
            writes = []
            for key, limit, scope in limits:
                item = self.table.get_item(Key={"job_id": key}, ConsistentRead=True).get("Item") or {}
                slots = live_slots(item.get("slots") or {}, moment)
                if len(slots) >= limit:
                    return scope
                slots[job_id] = int(moment) + SLOT_SECONDS
                version = int(item.get("version", 0))
                # The table resource's client takes Python values (boto3 serialises them), as the table does.
                writes.append(
                    {
                        "Update": {
                            "TableName": self.config.table,
                            "Key": {"job_id": key},
                            "UpdateExpression": "SET slots = :slots, version = :next, expires_at = :until",
                            "ConditionExpression": "attribute_not_exists(version) OR version = :version",
                            "ExpressionAttributeValues": {
                                ":slots": slots,
                                ":next": version + 1,
                                ":version": version,
                                # The item itself goes (TTL) a day after its last slot lapses, once nobody submits.
                                ":until": max(slots.values()) + 86_400,
                            },
                        }
                    }
                )
            try:
                dynamodb.transact_write_items(TransactItems=writes)
                return None
            except dynamodb.exceptions.TransactionCanceledException:
                time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter: another submit or release was first
        return "stack"  # still contended after every attempt: as busy as full

    def release_slot(self, job_id: str, owner: str | None) -> None:
        """Give back the job's slots (when it finished or failed). A slot never given back lapses by itself."""
        keys = [STACK_SLOTS] + ([caller_slots(owner)] if owner else [])
        for key in keys:
            try:
                self.table.update_item(
                    Key={"job_id": key},
                    UpdateExpression="REMOVE slots.#job ADD version :one",
                    ConditionExpression="attribute_exists(slots)",
                    ExpressionAttributeNames={"#job": job_id},
                    ExpressionAttributeValues={":one": 1},
                )
            except self.table.meta.client.exceptions.ConditionalCheckFailedException:
                pass
            except Exception:  # the slot lapses by itself: never fail a finished job over it
                logger.warning("bulk slot not released", extra={"job_id": job_id}, exc_info=True)

    # ---- reading ----
    def results_lines(self, job_id: str, *, quick: bool = False) -> list[str]:
        """The results file; `quick`: one attempt within RESULTS_BUDGET, for a waiting caller."""
        _, results_key = _keys(job_id)
        body = (self.quick_s3 if quick else self.s3).get_object(Bucket=self.config.bucket, Key=results_key)["Body"].read().decode()
        return body.splitlines()

    def results_url(self, job_id: str) -> str:
        _, results_key = _keys(job_id)
        return self.s3.generate_presigned_url(
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

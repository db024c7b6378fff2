"""Wooxy bulk lookups on the stack built from template.yaml (moto, its Step Functions interpreter with the
payload quota on, the real handlers in this process), against the Wooxy sandbox with a fixed latency per
request. Each figure is a ratio to the physical bound measured in the same run:

- 10,000 ids inline (POST /wooxy/status/bulk), 100 ms a request: bound 100 requests / 4 at a time x 0.1 s = 2.5 s.
- a 100,000-id job (POST /wooxy/bulk-jobs until GET says succeeded), 50 ms a request: bound 1,000 / 4 x 0.05 = 12.5 s.
  (4 at a time: bulk's share of Wooxy's limit, the template's WooxyBulkConcurrency default.)
- CPU milliseconds per 100-id chunk: the chunk function's task (`steps.run_chunk`) as this thread's CPU
  time, network waits excluded; once with the chunk's S3 and DynamoDB writes answered by moto in this thread
  (what the local run costs), once with them recorded in memory (what our code costs; Lambda bills that plus
  boto3's share of two requests).

Benchmarks measure; they assert nothing.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import threading
import time
from contextlib import redirect_stdout
from typing import Any
from unittest import mock

from local.function_env import install_function_environ
from local.sandboxes.wooxy import DEFAULT_CREDENTIALS, WooxySandbox
from local.stack import LocalAws
from local.template import TEMPLATE, load_template_checked
from sms_status.bulk import rules, steps
from sms_status.observability import logger
from tests.apigw import rest_event

INLINE_IDS, INLINE_LATENCY = 10_000, 0.1
JOB_IDS, JOB_LATENCY = 100_000, 0.05


def bound(ids: int, latency: float) -> float:
    """Requests of 100 ids, bulk's share of Wooxy's limit at a time (WooxyChunkFunction's reservation)."""
    at_a_time = int(load_template_checked(TEMPLATE)["Parameters"]["WooxyBulkConcurrency"]["Default"])
    return ids / 100 / at_a_time * latency


class ChunkCpu:
    """Wraps steps.run_chunk to record the CPU time of each chunk task on its own thread."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._lock = threading.Lock()
        self._original = steps.run_chunk

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return self._original(*args, **kwargs)
        finally:
            with self._lock:
                self.samples.append(time.thread_time() - start)


def call(aws: LocalAws, method: str, resource: str, body: Any = None, path: dict[str, str] | None = None) -> tuple[int, Any]:
    response = aws.functions["WooxyBulkFunction"].invoke(rest_event(method, resource, path, body))
    return response["statusCode"], json.loads(response["body"])


def inline_run(aws: LocalAws, sandbox: WooxySandbox, ids: list[str]) -> tuple[float, int, Any]:
    sandbox.reset_stats()
    sandbox.requests.clear()
    start = time.perf_counter()
    status, body = call(aws, "POST", "/wooxy/status/bulk", {"ids": ids})
    return time.perf_counter() - start, status, body


def job_run(aws: LocalAws, sandbox: WooxySandbox, ids: list[str]) -> tuple[float, dict[str, Any]]:
    sandbox.reset_stats()
    sandbox.requests.clear()
    start = time.perf_counter()
    _, job = call(aws, "POST", "/wooxy/bulk-jobs", {"ids": ids})
    while job["state"] == "running":
        time.sleep(0.2)  # a client's polling; each GET costs the one-process emulation CPU the job needs too
        _, job = call(aws, "GET", "/wooxy/bulk-jobs/{job_id}", path={"job_id": job["job_id"]})
    return time.perf_counter() - start, job


def our_chunk_cpu(sandbox: WooxySandbox, ids: list[str], env: dict[str, str], rounds: int = 200) -> float:
    """Median CPU ms of run_chunk with the store's writes kept in memory: what the chunk code itself costs."""

    class MemoryStore:
        def record_chunk(self, job_id: str, index: int, reports: list[dict[str, Any]]) -> None:
            body = "\n".join(rules.to_lines(reports)) + "\n"  # what record_chunk serialises before its two writes
            self.last = (body.encode(), rules.count_statuses(report["status"] for report in reports))

    from sms_status.model import Provider
    from sms_status.services import measured_lookup, provider_service

    samples = []
    sandbox.latency = 0.0
    service = provider_service(Provider.WOOXY, {**os.environ, **env})  # the chunk function's own settings
    for n in range(rounds):
        chunk = ids[(n % 100) * 100 : (n % 100 + 1) * 100]
        start = time.thread_time()
        task = {"job_id": "0" * 32, "index": n, "ids": chunk}
        steps.run_chunk(task, lambda part: measured_lookup(service, part, via="bulk"), MemoryStore())
        samples.append(time.thread_time() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    install_function_environ()
    ids = [f"{n:024x}" for n in range(JOB_IDS)]
    with WooxySandbox() as sandbox:
        for message_id in ids:
            sandbox.add_message(message_id, [(0, "queued"), (1, "delivered")])
        aws = LocalAws({"WooxyBaseUrl": sandbox.base_url}, {"WooxySecret": DEFAULT_CREDENTIALS}).start()
        logger.registered_handler.setStream(io.StringIO())  # the handlers' JSON logs are written, not shown
        cpu = ChunkCpu()
        try:
            with redirect_stdout(io.StringIO()), mock.patch("sms_status.bulk.run_chunk", cpu):
                inline_run(aws, sandbox, ids[:1_000])  # warm: secret cached, HTTP pool open, as in a warm Lambda
                sandbox.latency = INLINE_LATENCY
                cpu.samples.clear()
                inline_wall, inline_status, inline_body = inline_run(aws, sandbox, ids[:INLINE_IDS])
                inline_stats = (len(sandbox.requests), sandbox.max_ids_per_request, sandbox.max_in_flight)
                chunk_cpu_local = statistics.median(cpu.samples) * 1000
                sandbox.latency = JOB_LATENCY
                job_wall, job = job_run(aws, sandbox, ids)
                job_stats = (len(sandbox.requests), sandbox.max_ids_per_request, sandbox.max_in_flight)
            with redirect_stdout(io.StringIO()):
                chunk_cpu_ours = our_chunk_cpu(sandbox, ids, aws.functions["WooxyChunkFunction"].environment)
        finally:
            aws.stop()

    answered = len(inline_body.get("results", [])) if isinstance(inline_body, dict) else 0
    inline_bound, job_bound = bound(INLINE_IDS, INLINE_LATENCY), bound(JOB_IDS, JOB_LATENCY)
    print("\n== Wooxy bulk on the local stack (moto, payload quota on)")
    print(f"  inline {INLINE_IDS:,} ids, {INLINE_LATENCY * 1000:.0f} ms a request: HTTP {inline_status}, {answered:,} reports")
    print(f"    requests {inline_stats[0]}, max ids per request {inline_stats[1]}, max in flight {inline_stats[2]}")
    print(f"    wall {inline_wall:6.2f} s   bound {inline_bound:5.2f} s   ratio {inline_wall / inline_bound:5.2f}")
    print(f"  job {JOB_IDS:,} ids, {JOB_LATENCY * 1000:.0f} ms a request: {job['state']}, {job['done']:,} done, counts {job['counts']}")
    print(f"    requests {job_stats[0]}, max ids per request {job_stats[1]}, max in flight {job_stats[2]}")
    print(f"    submit to results {job_wall:6.2f} s   bound {job_bound:5.2f} s   ratio {job_wall / job_bound:5.2f}")
    print("  CPU per 100-id chunk (median, this thread, network waits excluded)")
    print(f"    chunk code, writes in memory        {chunk_cpu_ours:6.2f} ms")
    print(f"    chunk task with moto's S3/DynamoDB  {chunk_cpu_local:6.2f} ms")


if __name__ == "__main__":
    main()

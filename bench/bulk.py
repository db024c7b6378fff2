"""10,000 Wooxy ids through the bulk state machine (moto's interpreter, real handler, sandbox with 100 ms
latency per request), against the physical bound: 100 requests / 10 at a time x 0.1 s = 1.0 s.

The run is split where the time goes (measured by timing the handler's chunk invocations): before the first
chunk starts, the chunk phase, and after the last chunk ends. moto's 256 KiB payload check is lifted: the
merged answer (~3.5 MB) is over AWS's limit, see docs/bulk.md. Benchmarks measure; they assert nothing.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import uuid
import zipfile
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from local.lambda_routing import lift_payload_quota, load_handler, route_lambda_invocations, substitute, wait_for_execution
from local.sandboxes.wooxy import DEFAULT_CREDENTIALS, WooxySandbox
from sms_status.observability import logger
from sms_status.services import reset_services

ROOT = Path(__file__).resolve().parent.parent
IDS = 10_000
LATENCY = 0.1
BOUND = IDS / 100 / 10 * LATENCY  # 100 requests, 10 at a time, 0.1 s each


class ChunkClock:
    """Wraps the handler to record when bulk chunks start and end."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.spans: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def __call__(self, event: Any, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.handler(event, context)
        finally:
            if isinstance(event.get("bulk_chunk"), list):
                with self._lock:
                    self.spans.append((start, time.perf_counter()))


def run(sfn: Any, arn: str, ids: list[str]) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    started = sfn.start_execution(stateMachineArn=arn, name=uuid.uuid4().hex, input=json.dumps({"ids": ids}))
    described = wait_for_execution(sfn, started["executionArn"], timeout=300, poll=0.005)
    return time.perf_counter() - start, described


def main() -> None:
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Bench")
    ids = [f"{n:024x}" for n in range(IDS)]
    with WooxySandbox() as sandbox, mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        for message_id in ids:
            sandbox.add_message(message_id, [(0, "queued"), (1, "delivered")])
        boto3.client("secretsmanager").create_secret(Name="bench/wooxy", SecretString=json.dumps(DEFAULT_CREDENTIALS))
        os.environ.update(WOOXY_BASE_URL=sandbox.base_url, WOOXY_SECRET_NAME="bench/wooxy")
        reset_services()
        parameters.clear_caches()
        role = boto3.client("iam").create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", "")
        function_arn = boto3.client("lambda").create_function(
            FunctionName="wooxy", Runtime="python3.13", Role=role, Handler="app.lambda_handler", Code={"ZipFile": code.getvalue()}
        )["FunctionArn"]
        sfn = boto3.client("stepfunctions")
        definition = substitute((ROOT / "statemachine" / "wooxy_bulk.asl.json").read_text(), {"WooxyFunctionArn": function_arn})
        arn = sfn.create_state_machine(name="bench", definition=definition, roleArn=role, type="EXPRESS")["stateMachineArn"]
        clock = ChunkClock(load_handler(ROOT / "functions" / "wooxy" / "app.py", "wooxy_app_for_bench"))
        logger.registered_handler.setStream(io.StringIO())  # the handler's JSON logs are written, not shown
        with route_lambda_invocations({"wooxy": clock}), lift_payload_quota(), redirect_stdout(io.StringIO()):
            run(sfn, arn, ids[:1_000])  # warm: secret cached and HTTP pool open, as in a warm Lambda
            sandbox.latency = LATENCY
            sandbox.reset_stats()
            clock.spans.clear()
            started = time.perf_counter()
            wall, described = run(sfn, arn, ids)
    first_start = min(s for s, _ in clock.spans) - started
    last_end = max(e for _, e in clock.spans) - started
    answered = len(json.loads(described.get("output") or "{}").get("results", []))
    print(f"\n== Wooxy bulk: {IDS:,} ids through the state machine, sandbox latency {LATENCY * 1000:.0f} ms per request")
    print(f"  status {described['status']}, {answered:,} reports, {len(sandbox.requests)} requests")
    print(f"  max ids per request {sandbox.max_ids_per_request}, max requests in flight {sandbox.max_in_flight}")
    print(f"  wall time          {wall:6.2f} s")
    print(f"  bound              {BOUND:6.2f} s  (100 requests / 10 at a time x {LATENCY} s)")
    print(f"  ratio              {wall / BOUND:6.2f}")
    print(f"  before 1st chunk   {first_start:6.2f} s  (start, validation, partition, Map set-up)")
    print(f"  chunk phase        {last_end - first_start:6.2f} s  (first chunk start -> last chunk end)")
    print(f"  after last chunk   {wall - last_end:6.2f} s  (merging ~3.5 MB of reports, execution output)")


if __name__ == "__main__":
    main()

"""Cold first answer: the whole-process wall time from starting the interpreter to the first answer of a lookup,
next to a typical Powertools REST handler's start, measured in the same run (the machine is shared: compare the
ratio, not the milliseconds).

- ours: a fresh interpreter with the Wooxy function and the built layer on its path (like cold_import.py), that
  imports the handler and answers GET /wooxy/messages/{id}: settings, the secret (through the local Parameters
  and Secrets extension, served from moto by this process), one request to a zero-latency Wooxy sandbox.
- ours + an SDK client: the same, building a boto3 Secrets Manager client first (what reading the secret with the
  SDK, Powertools' get_secret, costs on top: the path before the extension).
- typical: a fresh interpreter that imports Logger, Metrics, APIGatewayRestResolver and parameters from Powertools
  and builds a boto3 Secrets Manager client (and answers nothing).
The runs alternate, median of RUNS each; the clock is CLOCK_MONOTONIC, shared by the processes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from bench.cold_import import ROOT, layer_path

RUNS = 11
FUNCTION = ROOT / "functions" / "wooxy"
MESSAGE_ID = "5d91537bd132fdf45916520a"
SECRET_NAME = "bench/wooxy"
SESSION_TOKEN = "bench-session"

OURS = """
import json, sys, time
{before}
import app
class Context:
    function_name, memory_limit_in_mb, aws_request_id = "bench", 512, "cold-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    def get_remaining_time_in_millis(self): return 25000
response = app.lambda_handler(json.loads(sys.argv[1]), Context())
answered = time.monotonic_ns()
assert response["statusCode"] == 200, response
print("ANSWERED", answered, flush=True)
"""
SDK_CLIENT = "import boto3; boto3.client('secretsmanager')"
TYPICAL = """
import time
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities import parameters
import boto3
client = boto3.client("secretsmanager")
print("ANSWERED", time.monotonic_ns(), flush=True)
"""
BARE = 'import time; print("ANSWERED", time.monotonic_ns(), flush=True)'


def run(code: str, env: dict[str, str], *args: str) -> float:
    """Milliseconds from starting the process to the moment it printed ANSWERED."""
    started = time.monotonic_ns()
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=FUNCTION, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("ANSWERED ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"cold run failed: {out.stderr[-2000:]}")
    return (int(lines[-1].split()[1]) - started) / 1e6


def main() -> None:
    import boto3
    from moto import mock_aws

    from local.sandboxes.wooxy import DEFAULT_CREDENTIALS, WooxySandbox
    from local.secrets_extension import SecretsExtension
    from tests.apigw import rest_event

    layer, label = layer_path()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(FUNCTION), str(layer)]),
        "PYTHONDONTWRITEBYTECODE": "0",
        "POWERTOOLS_SERVICE_NAME": "wooxy",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
    }
    env.pop("AWS_PROFILE", None)
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    event = json.dumps(rest_event("GET", "/wooxy/messages/{id}", {"id": MESSAGE_ID}))
    with mock_aws(), WooxySandbox() as sandbox, SecretsExtension(token=SESSION_TOKEN) as extension:
        boto3.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=json.dumps(DEFAULT_CREDENTIALS))
        sandbox.add_message(MESSAGE_ID, steps=[(0, "delivered")])
        env.update(
            WOOXY_BASE_URL=sandbox.base_url,
            WOOXY_SECRET_NAME=SECRET_NAME,
            PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=str(extension.port),
        )
        variants = {
            "bare interpreter": (BARE, ()),
            "ours": (OURS.format(before=""), (event,)),
            "ours + an SDK client": (OURS.format(before=SDK_CLIENT), (event,)),
            "typical": (TYPICAL, ()),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for code, args in variants.values():  # once each first: .pyc files written, the extension's client built
            run(code, env, *args)
        for _ in range(RUNS):
            for name, (code, args) in variants.items():
                times[name].append(run(code, env, *args))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\n== cold first answer, GET /wooxy/messages/{{id}} ({label}, zero-latency sandbox, median of {RUNS} fresh processes)")
    for name, values in times.items():
        print(f"  {name:<22} median {medians[name]:6.0f} ms   min {min(values):6.0f}   max {max(values):6.0f}")
    fastest = {name: min(values) for name, values in times.items()}  # the least disturbed run of each, on a shared machine
    ratio, fastest_ratio = medians["ours"] / medians["typical"], fastest["ours"] / fastest["typical"]
    print(f"  ratio ours/typical {ratio:.2f}   (goal <= 0.5; of the fastest runs {fastest_ratio:.2f})")
    print(f"  ratio (ours + an SDK client)/typical {medians['ours + an SDK client'] / medians['typical']:.2f}")


if __name__ == "__main__":
    main()

"""Per-request overhead of a handler over a raw provider call, against a zero-latency sandbox.

Both paths make the same single HTTP request to the same sandbox; the difference is what the handler
adds (event routing, validation, secret cache lookup, report serialization, logging, metrics).
"""

from __future__ import annotations

import io
import json
import os
import statistics
import time
from contextlib import redirect_stdout

import boto3
from moto import mock_aws

from local.sandboxes.wooxy import DEFAULT_CREDENTIALS, WooxySandbox
from local.secrets_extension import SecretsExtension
from sms_status.credentials import EXTENSION_PORT_VARIABLE
from sms_status.http import HttpClient
from sms_status.observability import logger
from sms_status.providers.wooxy import WooxyClient, WooxyCredentials
from tests.apigw import LambdaContext, load_handler, rest_event

REQUESTS = 300


def timed(call, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e6)
    return times


def main() -> None:
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_SESSION_TOKEN="bench")
    # The secret is read through the (local) Parameters and Secrets extension, as deployed; cached after the first.
    with mock_aws(), WooxySandbox() as sandbox, SecretsExtension(token="bench") as extension:
        boto3.client("secretsmanager").create_secret(Name="bench/wooxy", SecretString=json.dumps(DEFAULT_CREDENTIALS))
        os.environ.update(WOOXY_BASE_URL=sandbox.base_url, WOOXY_SECRET_NAME="bench/wooxy", POWERTOOLS_METRICS_NAMESPACE="Bench")
        os.environ[EXTENSION_PORT_VARIABLE] = str(extension.port)
        sandbox.add_message("m1", steps=[(0, "delivered")], phone_number="+15555555")
        handler = load_handler("wooxy")
        event, context = rest_event("GET", "/wooxy/messages/{id}", {"id": "m1"}), LambdaContext()
        raw = WooxyClient(HttpClient("wooxy"), sandbox.base_url, WooxyCredentials(DEFAULT_CREDENTIALS["access_token"]))
        # The handler's JSON logs and metrics are written (as in Lambda), just not to the terminal.
        logger.registered_handler.setStream(io.StringIO())
        with redirect_stdout(io.StringIO()):
            timed(lambda: handler.lambda_handler(event, context), 20)  # warm: secret cached, pools open
            via_handler = timed(lambda: handler.lambda_handler(event, context), REQUESTS)
        timed(lambda: raw.status("m1"), 20)
        direct = timed(lambda: raw.status("m1"), REQUESTS)
    h, d = statistics.median(via_handler), statistics.median(direct)
    print(f"\n== per-request overhead, GET /wooxy/messages/{{id}}, zero-latency sandbox, median of {REQUESTS}")
    print(f"  raw client call {d:8.0f} us\n  through handler {h:8.0f} us\n  overhead        {h - d:8.0f} us")


if __name__ == "__main__":
    main()

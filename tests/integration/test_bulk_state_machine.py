"""The Wooxy bulk state machine (statemachine/wooxy_bulk.asl.json) on moto's interpreter, its Lambda tasks
routed in-process to the real Wooxy handler, against the Wooxy sandbox over HTTP on 127.0.0.1.

AWS caps every state's input and output at 256 KiB, and moto enforces the same cap: a merged answer of about
700 Wooxy reports is the most one execution can return (docs/bulk.md). The 2,500- and 10,000-id cases check
chunking, the concurrency bound, order and completeness with moto's cap lifted (`lift_payload_quota`);
`test_answer_over_256_kib_fails_like_aws` pins what AWS does with such sizes.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from local.lambda_routing import lift_payload_quota, load_handler, route_lambda_invocations, substitute, wait_for_execution
from local.sandboxes.base import Fault
from local.sandboxes.wooxy import DEFAULT_CREDENTIALS, WooxySandbox
from sms_status.services import reset_services

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = ROOT / "statemachine" / "wooxy_bulk.asl.json"
FUNCTION_NAME = "sms-status-WooxyFunction"


def ids_for(count: int) -> list[str]:
    return [f"{n:024x}" for n in range(1, count + 1)]


@dataclass
class Bulk:
    sfn: Any
    arn: str
    sandbox: WooxySandbox

    def run(self, payload: Any, *, lifted: bool = False, timeout: float = 120) -> dict[str, Any]:
        with lift_payload_quota() if lifted else nullcontext():
            started = self.sfn.start_execution(stateMachineArn=self.arn, name=uuid.uuid4().hex, input=json.dumps(payload))
            return wait_for_execution(self.sfn, started["executionArn"], timeout)

    def results(self, ids: list[str], **kwargs: Any) -> list[dict[str, Any]]:
        described = self.run({"ids": ids}, **kwargs)
        assert described["status"] == "SUCCEEDED", (described.get("error"), described.get("cause"))
        output = json.loads(described["output"])
        assert output["provider"] == "wooxy"
        return output["results"]


@pytest.fixture(scope="module")
def wooxy_handler():
    return load_handler(ROOT / "functions" / "wooxy" / "app.py", "wooxy_app_for_bulk_tests")


@pytest.fixture
def bulk(monkeypatch, wooxy_sandbox: WooxySandbox, wooxy_handler) -> Iterator[Bulk]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.client("secretsmanager").create_secret(Name="sms-status/wooxy", SecretString=json.dumps(DEFAULT_CREDENTIALS))
        monkeypatch.setenv("WOOXY_BASE_URL", wooxy_sandbox.base_url)
        monkeypatch.setenv("WOOXY_SECRET_NAME", "sms-status/wooxy")
        monkeypatch.setenv("PROVIDER_READ_TIMEOUT", "1")
        monkeypatch.setenv("PROVIDER_RETRIES", "1")
        reset_services()
        parameters.clear_caches()
        role = boto3.client("iam").create_role(RoleName="bulk", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", "")  # never run: invocations are routed to the real handler
        function_arn = boto3.client("lambda").create_function(
            FunctionName=FUNCTION_NAME, Runtime="python3.13", Role=role, Handler="app.lambda_handler", Code={"ZipFile": code.getvalue()}
        )["FunctionArn"]
        sfn = boto3.client("stepfunctions")
        definition = substitute(DEFINITION.read_text(), {"WooxyFunctionArn": function_arn})
        arn = sfn.create_state_machine(name="wooxy-bulk", definition=definition, roleArn=role, type="EXPRESS")["stateMachineArn"]
        with route_lambda_invocations({FUNCTION_NAME: wooxy_handler}):
            yield Bulk(sfn, arn, wooxy_sandbox)
        reset_services()
        parameters.clear_caches()


def seed(sandbox: WooxySandbox, ids: list[str]) -> None:
    for message_id in ids:
        sandbox.add_message(message_id, [(0, "queued")], phone_number="+15555555", from_name="Sender", text="secret text")


def sent_ids(sandbox: WooxySandbox) -> list[list[str]]:
    return [json.loads(request.body)["ids"] for request in sandbox.requests]


# ---- every id answered once, in order, within Wooxy's limits ---------------------------------------
@pytest.mark.parametrize(("count", "lifted"), [(1, False), (100, False), (101, False), (2_500, True), (10_000, True)])
def test_every_id_answered_once_in_order_within_wooxy_limits(bulk: Bulk, count: int, lifted: bool):
    ids = ids_for(count)
    seed(bulk.sandbox, ids[:-1])  # the last one is unknown to Wooxy
    bulk.sandbox.latency = 0.02  # long enough for chunks to overlap
    asked = ids + ids[: min(count, 50)] if count < 10_000 else ids  # duplicates collapse (10,000 is the cap)

    results = bulk.results(asked, lifted=lifted)

    assert [r["id"] for r in results] == ids
    assert [r["status"] for r in results] == ["pending"] * (count - 1) + ["not_found"]
    assert "secret text" not in json.dumps(results)  # message text never leaves the function
    chunks = sent_ids(bulk.sandbox)
    assert sorted(i for chunk in chunks for i in chunk) == sorted(ids)  # each id asked exactly once
    assert len(chunks) == -(-count // 100)
    assert bulk.sandbox.max_ids_per_request <= 100
    assert 1 <= bulk.sandbox.max_in_flight <= 10
    if count >= 2_500:
        assert bulk.sandbox.max_in_flight > 1  # chunks do run side by side


def test_a_failing_chunk_becomes_error_reports_for_its_ids_only(bulk: Bulk):
    ids = ids_for(500)
    seed(bulk.sandbox, ids)
    third_chunk = ids[200:300]
    bulk.sandbox.inject(Fault.SERVER_ERROR, times=None, match=lambda request: third_chunk[0].encode() in request.body)

    results = bulk.results(ids)

    assert [r["id"] for r in results] == ids
    failed = [r for r in results if r["status"] == "unknown"]
    assert [r["id"] for r in failed] == third_chunk
    for report in failed:
        assert report["final"] is False
        assert report["retryable"] is True
        # the pinned error code, the same as POST /wooxy/status would answer for this failure
        assert report["provider_status"]["code"] == "provider_unavailable"
        assert report["details"]["error"]["code"] == "provider_unavailable"
        assert "500" in report["details"]["error"]["message"]
    assert all(r["status"] == "pending" for r in results if r["id"] not in third_chunk)
    # the state machine retried the chunk once after the function's own HTTP retries: 2 x 2 attempts
    assert sum(third_chunk[0] in chunk for chunk in sent_ids(bulk.sandbox)) == 4


def test_refused_credentials_become_non_retryable_error_reports(bulk: Bulk):
    ids = ids_for(3)
    bulk.sandbox.access_token = "rotated-away"

    results = bulk.results(ids)

    assert [(r["id"], r["status"], r["retryable"], r["provider_status"]["code"]) for r in results] == [
        (i, "unknown", False, "credentials_error") for i in ids
    ]


# ---- bad input fails the execution with InvalidRequest, before any Wooxy request -----------------
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"ids": "5d91537bd132fdf45916520a"}, "array"),
        ({"ids": {"a": 1}}, "array"),
        ({}, "array"),
        ({"ids": []}, "1 to 10000"),
        ({"ids": ids_for(10_001)}, "got 10001"),
        ({"ids": ["5d91537bd132fdf45916520a", 7]}, "positions: [1]"),
        ({"ids": ["5d91537bd132fdf45916520a", ""]}, "positions: [1]"),
        ({"ids": ["   "]}, "positions: [0]"),
        ({"ids": ["x" * 129]}, "positions: [0]"),
        ({"ids": ["a"], "references": ["b"]}, "unknown field"),
        ([], "JSON object"),  # bodies that are JSON but not an object still end as InvalidRequest (400)
        (None, "JSON object"),
        ("5d91537bd132fdf45916520a", "JSON object"),
        (7, "JSON object"),
    ],
)
def test_invalid_input_fails_with_invalid_request_before_any_provider_call(bulk: Bulk, payload: Any, reason: str):
    described = bulk.run(payload, lifted=True)

    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidRequest"
    assert reason in described["cause"]
    assert "stackTrace" not in described["cause"]  # the Cause is the message alone
    assert bulk.sandbox.requests == []


# ---- AWS's 256 KiB state payload limit --------------------------------------------------------------
def test_answer_over_256_kib_fails_like_aws(bulk: Bulk):
    ids = ids_for(2_500)
    seed(bulk.sandbox, ids)

    described = bulk.run({"ids": ids})

    assert described["status"] == "FAILED"
    assert described["error"] == "States.DataLimitExceeded"

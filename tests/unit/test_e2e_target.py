"""The deployed target of `make e2e` (tests/e2e/target.py), read from a stack's Outputs on moto: what
`STACK_NAME=... make e2e` would talk to, and how it signs, without an AWS account."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.e2e.target import PROVIDERS, QUEUE_OUTPUTS, deployed_target

ROOT = Path(__file__).resolve().parents[2]

API_URL = "https://abc123defg.execute-api.eu-west-1.amazonaws.com/v1"
QUEUES = {
    "OpenMarketTrackingQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/om",
    "WooxyTrackingQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/wooxy",
    "WwtTrackingQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/wwt",
}


def create_stack(outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},  # a stack needs one resource
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(StackName="sms-status", TemplateBody=json.dumps(template))


@mock_aws
def test_the_stack_outputs_give_the_urls_and_the_api_region_signs() -> None:
    create_stack({"ApiUrl": API_URL + "/", **QUEUES, "StatusEventBusName": "bus"})

    target = deployed_target("sms-status", {})

    assert (target.kind, target.exact) == ("deployed", False)
    assert target.base_url == API_URL
    assert target.region == "eu-west-1"  # the API's region, from its host, whatever the session's is
    assert target.queue_urls == {
        "openmarket": QUEUES["OpenMarketTrackingQueueUrl"],
        "wooxy": QUEUES["WooxyTrackingQueueUrl"],
        "wwt": QUEUES["WwtTrackingQueueUrl"],
    }
    assert target.credentials.access_key == os.environ["AWS_ACCESS_KEY_ID"]  # the default chain's (moto's fake ones)
    assert all(len(target.lookups[provider]) == 1 and target.lookups[provider][0].status is None for provider in PROVIDERS)
    assert target.track[0] == "wwt"
    assert target.track[1].id == target.lookups["wwt"][0].id


@mock_aws
def test_the_ids_come_from_the_e2e_variables() -> None:
    create_stack({"ApiUrl": API_URL, **QUEUES})
    env = {
        "E2E_WOOXY_IDS": "a1, a2 ,,a3",
        "E2E_WWT_REFERENCES": "ref1",
        "E2E_TRACK_PROVIDER": "openmarket",
        "E2E_TRACK_ID": "T-1",
        "E2E_TRACK_TIMEOUT": "42",
    }

    target = deployed_target("sms-status", env)

    assert [case.id for case in target.lookups["wooxy"]] == ["a1", "a2", "a3"]
    assert [case.id for case in target.wwt_references] == ["ref1"]
    assert (target.track[0], target.track[1].id, target.track_timeout) == ("openmarket", "T-1", 42.0)


@mock_aws
def test_a_stack_without_the_outputs_is_named_in_the_error() -> None:
    create_stack({"ApiUrl": API_URL})
    with pytest.raises(RuntimeError, match=r"no output.*WooxyTrackingQueueUrl"):
        deployed_target("sms-status", {})


def test_every_output_the_deployed_target_reads_is_an_output_of_the_template() -> None:
    outputs = (ROOT / "template.yaml").read_text().split("\nOutputs:\n", 1)[1]
    for key in ("ApiUrl", *QUEUE_OUTPUTS.values()):
        assert re.search(rf"^  {key}:$", outputs, re.MULTILINE), key

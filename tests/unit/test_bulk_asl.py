"""Static checks of the Wooxy bulk state machine definition: a real validator (cfn-lint's state-machine
rule, E3601) plus the properties the design depends on, and bulk.validate_bulk_input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from sms_status.bulk import MAX_BULK_IDS, validate_bulk_input
from sms_status.errors import InvalidRequest

ROOT = Path(__file__).resolve().parents[2]
DEFINITION: dict[str, Any] = json.loads((ROOT / "statemachine" / "wooxy_bulk.asl.json").read_text())
RETRIED = {
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "Lambda.SdkClientException",
    "provider_unavailable",
    "provider_timeout",
}


def all_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        if state["Type"] == "Map":
            yield from all_states(state["ItemProcessor"]["States"])


STATES = dict(all_states(DEFINITION["States"]))


def test_cfn_lint_state_machine_rule_accepts_the_definition():
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineType": "EXPRESS",
                    "RoleArn": "arn:aws:iam::123456789012:role/bulk",
                    "Definition": DEFINITION,
                    "DefinitionSubstitutions": {"WooxyFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:wooxy"},
                },
            }
        },
    }
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"]))
    assert [f"{m.rule.id} {m.message}" for m in matches] == []


def test_cfn_lint_rule_does_catch_a_broken_definition():
    broken = json.loads(json.dumps(DEFINITION))
    broken["States"]["Partition"]["Type"] = "Partition"  # no such state type
    broken["States"]["LookUpChunks"]["Iterator"] = {}  # the deprecated field next to ItemProcessor
    template = {
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"RoleArn": "arn:aws:iam::123456789012:role/bulk", "Definition": broken},
            }
        }
    }
    found = [m.rule.id for m in lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"]))]
    assert found.count("E3601") >= 2


def test_jsonpath_only_and_no_deprecated_map_fields():
    assert DEFINITION["QueryLanguage"] == "JSONPath"
    assert "Iterator" not in json.dumps(DEFINITION)
    maps = {name: state for name, state in STATES.items() if state["Type"] == "Map"}
    assert set(maps) == {"LookUpChunks", "ChunkErrorReports"}
    for state in maps.values():
        assert "Parameters" not in state
        assert "ItemProcessor" in state
        assert "ItemSelector" in state


def test_chunks_of_100_at_most_10_at_a_time():
    assert STATES["Partition"]["Parameters"]["chunks.$"] == "States.ArrayPartition($.ids, 100)"
    assert STATES["LookUpChunks"]["MaxConcurrency"] == 10
    task = STATES["LookUpChunk"]
    assert task["Parameters"]["FunctionName"] == "${WooxyFunctionArn}"
    assert task["Parameters"]["Payload"] == {"bulk_chunk.$": "$.ids"}


def test_chunk_task_retries_with_backoff_and_catches_everything():
    task = STATES["LookUpChunk"]
    retried = {name for retrier in task["Retry"] for name in retrier["ErrorEquals"]}
    assert retried >= RETRIED
    assert all(retrier["BackoffRate"] >= 2 and retrier["IntervalSeconds"] >= 1 for retrier in task["Retry"])
    assert task["Catch"][-1]["ErrorEquals"] == ["States.ALL"]
    assert {catcher["Next"] for catcher in task["Catch"]} <= set(STATES)


def test_the_execution_ends_before_api_gateway_gives_up():
    assert DEFINITION["TimeoutSeconds"] < 29  # API Gateway's integration timeout


def test_invalid_request_is_a_fail_state_with_that_error_name():
    assert STATES["ValidateInput"]["Catch"][0]["ErrorEquals"] == ["InvalidRequest"]
    assert STATES["InvalidRequest"] == STATES["InvalidRequest"] | {"Type": "Fail", "Error": "InvalidRequest"}


# ---- bulk.validate_bulk_input ------------------------------------------------------------------------
def test_validation_keeps_first_occurrences_in_order():
    assert validate_bulk_input({"ids": ["b", "a", "b", "c", "a"]}) == ["b", "a", "c"]


def test_validation_counts_ids_as_sent():
    assert len(validate_bulk_input({"ids": ["x"] * MAX_BULK_IDS})) == 1
    with pytest.raises(InvalidRequest, match="got 10001"):
        validate_bulk_input({"ids": ["x"] * (MAX_BULK_IDS + 1)})


@pytest.mark.parametrize("payload", [None, [], "ids", {"ids": None}, {"ids": [None]}, {"ids": ["a", ""]}, {"ids": ["a"], "x": 1}])
def test_validation_rejects(payload: Any):
    with pytest.raises(InvalidRequest):
        validate_bulk_input(payload)


# ---- the template and the API integration ------------------------------------------------------------
@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from cfnlint.decode.cfn_yaml import load

    return load(str(ROOT / "template.yaml"))


@pytest.fixture(scope="module")
def bulk_integration() -> dict[str, Any]:
    import yaml

    openapi = yaml.safe_load((ROOT / "api" / "openapi.yaml").read_text())
    operation = openapi["paths"]["/wooxy/status/bulk"]["post"]
    assert operation["security"] == [{"sigv4": []}]  # AWS_IAM like every other route
    return operation["x-amazon-apigateway-integration"]


def test_state_machine_is_express_with_logging_but_no_execution_data(template: dict[str, Any]):
    machine = template["Resources"]["WooxyBulkStateMachine"]["Properties"]
    assert machine["Type"] == "EXPRESS"
    assert machine["DefinitionUri"] == "statemachine/wooxy_bulk.asl.json"
    assert set(machine["DefinitionSubstitutions"]) == {"WooxyFunctionArn"}
    assert machine["Logging"]["IncludeExecutionData"] is False
    assert machine["Logging"]["Level"] in {"ERROR", "ALL", "FATAL"}
    assert machine["Policies"][0] == {"LambdaInvokePolicy": {"FunctionName": {"Ref": "WooxyFunction"}}}


def test_api_role_may_only_start_this_state_machine_synchronously(template: dict[str, Any], bulk_integration: dict[str, Any]):
    assert bulk_integration["credentials"] == {"Fn::GetAtt": ["WooxyBulkApiRole", "Arn"]}
    role = template["Resources"]["WooxyBulkApiRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "apigateway.amazonaws.com"}
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert statements == [{"Effect": "Allow", "Action": "states:StartSyncExecution", "Resource": {"Ref": "WooxyBulkStateMachine"}}]


def test_integration_starts_the_execution_with_the_body_as_input(bulk_integration: dict[str, Any]):
    assert bulk_integration["type"] == "aws"
    assert bulk_integration["uri"]["Fn::Sub"].endswith(":states:action/StartSyncExecution")
    assert bulk_integration["passthroughBehavior"] == "never"  # only JSON bodies reach the state machine
    request = bulk_integration["requestTemplates"]["application/json"]["Fn::Sub"]
    assert "$util.escapeJavaScript($input.json('$'))" in request
    assert '"stateMachineArn": "${WooxyBulkStateMachine}"' in request


def test_failed_executions_are_never_200(bulk_integration: dict[str, Any]):
    responses = bulk_integration["responses"]
    template = responses["default"]["responseTemplates"]["application/json"]
    branches = template.split("#elseif")
    assert branches[0].count('$status == "SUCCEEDED"') == 1
    assert "responseOverride.status" not in branches[0]  # only SUCCEEDED keeps the default 200
    expected = {
        '$status == "FAILED" && $error == "InvalidRequest"': ("400", "invalid_request"),
        '$status == "TIMED_OUT"': ("504", "provider_timeout"),
        '$status == "FAILED" && $error == "States.DataLimitExceeded"': ("502", "internal_error"),
    }
    for condition, (status, code) in expected.items():
        (branch,) = [b for b in branches[1:] if b.lstrip("(").startswith(condition)]
        assert f"$context.responseOverride.status = {status}" in branch
        assert f'"code": "{code}"' in branch
    fallback = template.split("#else\n")[-1]
    assert "$context.responseOverride.status = 502" in fallback  # FAILED, ABORTED, anything else
    assert responses["4\\d{2}"]["statusCode"] == "500"
    assert responses["5\\d{2}"]["statusCode"] == "502"


def test_wooxy_function_concurrency_is_the_stack_wide_limit(template: dict[str, Any]):
    function = template["Resources"]["WooxyFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"] == {"Ref": "WooxyMaxConcurrency"}
    parameter = template["Parameters"]["WooxyMaxConcurrency"]
    assert (parameter["Default"], parameter["MaxValue"]) == (10, 10)

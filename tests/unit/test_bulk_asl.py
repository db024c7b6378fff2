"""Static checks of the Wooxy bulk state machine and its template resources: a real validator (cfn-lint's
state-machine rule, E3601) plus the properties the design depends on (docs/bulk.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "statemachine" / "wooxy_bulk.asl.json").read_text()
BULK_CONCURRENCY = 4  # the template's WooxyBulkConcurrency default
# The one unquoted placeholder, a number: the definition is JSON once it is substituted (the others are strings).
DEFINITION: dict[str, Any] = json.loads(TEXT.replace("${WooxyBulkConcurrency}", str(BULK_CONCURRENCY)))
SUBSTITUTIONS = {
    "ChunkFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:wooxy-chunks",
    "BulkFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:bulk",
    "BulkBucketName": "bulk-bucket",
    "WooxyBulkConcurrency": BULK_CONCURRENCY,
}


def all_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        if state["Type"] == "Map":
            yield from all_states(state["ItemProcessor"]["States"])


STATES = dict(all_states(DEFINITION["States"]))


def lint_machine(definition: dict[str, Any]) -> list[str]:
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineType": "STANDARD",
                    "RoleArn": "arn:aws:iam::123456789012:role/bulk",
                    "Definition": definition,
                    "DefinitionSubstitutions": SUBSTITUTIONS,
                },
            }
        },
    }
    return [f"{m.rule.id} {m.message}" for m in lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"]))]


def test_cfn_lint_state_machine_rule_accepts_the_definition():
    assert lint_machine(DEFINITION) == []


def test_cfn_lint_rule_does_catch_a_broken_definition():
    broken = json.loads(json.dumps(DEFINITION))
    broken["States"]["Finish"]["Type"] = "Finish"  # no such state type
    broken["States"]["LookUpChunks"]["Iterator"] = {}  # the deprecated field next to ItemProcessor
    assert sum(found.startswith("E3601") for found in lint_machine(broken)) >= 2


def test_jsonpath_only_and_no_deprecated_map_fields():
    assert DEFINITION["QueryLanguage"] == "JSONPath"
    assert "Iterator" not in json.dumps(DEFINITION)
    (name,) = [name for name, state in STATES.items() if state["Type"] == "Map"]
    assert "Parameters" not in STATES[name]
    assert {"ItemProcessor", "ItemSelector", "ItemReader"} <= set(STATES[name])


def test_chunks_come_from_s3_and_run_at_most_the_bulk_share_at_a_time_as_child_executions():
    lookup = STATES["LookUpChunks"]
    assert lookup["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert lookup["MaxConcurrency"] == BULK_CONCURRENCY
    assert '"MaxConcurrency": ${WooxyBulkConcurrency},' in TEXT  # the template's parameter, never a literal
    reader = lookup["ItemReader"]
    assert reader["Resource"] == "arn:aws:states:::s3:getObject"
    assert reader["Parameters"]["Bucket"] == "${BulkBucketName}"  # never taken from the execution input
    assert reader["Parameters"]["Key.$"] == "States.Format('jobs/{}/chunks.json', $.job_id)"
    assert lookup["ItemSelector"] == {"job_id.$": "$.job_id", "index.$": "$$.Map.Item.Index", "ids.$": "$$.Map.Item.Value"}
    assert lookup["ResultPath"] is None  # children answer counts; nothing of theirs is kept in the state


def test_states_carry_ids_and_counts_never_reports():
    chunk = STATES["LookUpChunk"]
    assert chunk["Parameters"] == {"FunctionName": "${ChunkFunctionArn}", "Payload": {"bulk_chunk.$": "$"}}
    assert chunk["ResultSelector"] == {"count.$": "$.Payload.count"}
    assert STATES["RecordFailedChunk"]["ResultSelector"] == {"count.$": "$.Payload.count"}
    assert STATES["Finish"]["Parameters"]["Payload"] == {"bulk_finish": {"job_id.$": "$.job_id"}}


def test_chunk_task_retries_throttling_and_outages_then_records_error_reports():
    task = STATES["LookUpChunk"]
    retried = {name for retrier in task["Retry"] for name in retrier["ErrorEquals"]}
    assert retried >= {
        "Lambda.TooManyRequestsException",
        "Lambda.ServiceException",
        "Lambda.ClientExecutionTimeoutException",
        "provider_unavailable",
        "provider_timeout",
    }
    assert all(retrier["BackoffRate"] >= 2 and retrier["JitterStrategy"] == "FULL" for retrier in task["Retry"])
    assert task["Catch"] == [
        {"Comment": task["Catch"][0]["Comment"], "ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailedChunk"}
    ]
    payload = STATES["RecordFailedChunk"]["Parameters"]["Payload"]["bulk_failed_chunk"]
    assert payload == {
        "job_id.$": "$.job_id",
        "index.$": "$.index",
        "ids.$": "$.ids",
        "error.$": "$.error.Error",
        "cause.$": "$.error.Cause",
    }


def test_a_throttled_chunk_waits_its_turn_for_most_of_the_execution_rather_than_fail():
    # Several jobs at once share the chunk function's reservation: a throttled chunk must wait, not become
    # error reports after a busy minute. Its own retrier, capped delays with full jitter (mean cap / 2).
    (throttled,) = [r for r in STATES["LookUpChunk"]["Retry"] if "Lambda.TooManyRequestsException" in r["ErrorEquals"]]
    assert throttled["ErrorEquals"] == ["Lambda.TooManyRequestsException"]
    assert throttled["JitterStrategy"] == "FULL"
    expected_wait = throttled["MaxAttempts"] * throttled["MaxDelaySeconds"] / 2
    assert 0.5 * DEFINITION["TimeoutSeconds"] <= expected_wait <= DEFINITION["TimeoutSeconds"]


def test_a_job_that_cannot_finish_is_marked_failed_and_the_execution_fails():
    for name in ("LookUpChunks", "Finish"):
        assert STATES[name]["Catch"][-1]["ErrorEquals"] == ["States.ALL"]
        assert STATES[name]["Catch"][-1]["Next"] == "JobFailed"
    assert STATES["JobFailed"]["Next"] == "Failed"
    assert STATES["Failed"]["Type"] == "Fail"
    assert DEFINITION["TimeoutSeconds"] == 3600
    # A running job's slot of the budget lapses only once its execution cannot be running any more.
    from sms_status.bulk.rules import EXECUTION_TIMEOUT, SLOT_SECONDS

    assert DEFINITION["TimeoutSeconds"] == EXECUTION_TIMEOUT < SLOT_SECONDS


# ---- the template ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from cfnlint.decode.cfn_yaml import load

    return load(str(ROOT / "template.yaml"))


def statements(template: dict[str, Any], owner: str) -> list[dict[str, Any]]:
    """The inline statements of the role `owner` runs with (its `Role: !GetAtt <role>.Arn`)."""
    role = template["Resources"][owner]["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = template["Resources"][role]["Properties"]["Policies"]
    return [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]


def test_state_machine_is_standard_with_logging_but_no_execution_data(template: dict[str, Any]):
    machine = template["Resources"]["WooxyBulkStateMachine"]["Properties"]
    assert machine["Type"] == "STANDARD"  # a Distributed Map needs a Standard parent
    assert machine["DefinitionUri"] == "statemachine/wooxy_bulk.asl.json"
    assert set(machine["DefinitionSubstitutions"]) == set(SUBSTITUTIONS)
    assert machine["Logging"]["IncludeExecutionData"] is False
    invoked = [s["Resource"] for s in statements(template, "WooxyBulkStateMachine") if s["Action"] == "lambda:InvokeFunction"]
    assert invoked == [[{"Fn::GetAtt": ["WooxyChunkFunction", "Arn"]}, {"Fn::GetAtt": ["WooxyBulkFunction", "Arn"]}]]
    assert machine["DefinitionSubstitutions"]["ChunkFunctionArn"] == {"Fn::GetAtt": ["WooxyChunkFunction", "Arn"]}


def test_the_function_arn_of_the_state_machine_matches_its_name(template: dict[str, Any]):
    """The bulk function builds the state machine's ARN from its name (a !Ref would be a cycle): they must agree."""
    resources = template["Resources"]
    name = resources["WooxyBulkStateMachine"]["Properties"]["Name"]["Fn::Sub"]
    arn = resources["WooxyBulkFunction"]["Properties"]["Environment"]["Variables"]["BULK_STATE_MACHINE_ARN"]["Fn::Sub"]
    assert arn.endswith(f":stateMachine:{name}")


def test_bucket_is_private_encrypted_tls_only_and_expires_job_data(template: dict[str, Any]):
    resources = template["Resources"]
    bucket = resources["BulkBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert (rule["Status"], rule["Prefix"], rule["ExpirationInDays"]) == ("Enabled", "jobs/", {"Ref": "BulkRetentionDays"})
    assert template["Parameters"]["BulkRetentionDays"]["Default"] == 7
    (deny,) = resources["BulkBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    ttl = resources["BulkJobsTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}


def test_every_grant_is_scoped_to_one_resource(template: dict[str, Any]):
    wooxy = {s["Sid"]: s for s in statements(template, "WooxyChunkFunction")}
    assert wooxy["WriteChunkReports"]["Action"] == "s3:PutObject"
    assert wooxy["WriteChunkReports"]["Resource"] == {"Fn::Sub": "${BulkBucket.Arn}/jobs/*/chunks/*"}
    assert wooxy["CountChunkReports"] == {
        "Sid": "CountChunkReports",
        "Effect": "Allow",
        "Action": "dynamodb:UpdateItem",
        "Resource": {"Fn::GetAtt": ["BulkJobsTable", "Arn"]},
    }
    bulk = {s["Sid"]: s for s in statements(template, "WooxyBulkFunction")}
    assert set(bulk) == {"JobData", "TellMissingJobDataFromDenied", "JobItems", "StartJobs", "SeeHowJobsEnded"}
    assert all(statement["Resource"] != "*" for statement in bulk.values())


def test_bulk_runs_within_its_own_share_of_wooxys_limit(template: dict[str, Any]):
    # The chunk function's reservation and the Map's MaxConcurrency are the same parameter: bulk's share.
    chunk = template["Resources"]["WooxyChunkFunction"]["Properties"]
    assert chunk["ReservedConcurrentExecutions"] == {"Ref": "WooxyBulkConcurrency"}
    machine = template["Resources"]["WooxyBulkStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"]["WooxyBulkConcurrency"] == {"Ref": "WooxyBulkConcurrency"}
    parameter = template["Parameters"]["WooxyBulkConcurrency"]
    assert (parameter["Default"], parameter["MaxValue"]) == (BULK_CONCURRENCY, 10)
    # The bulk function waits for jobs: it must not hold (or have) any of Wooxy's slots, nor its secret.
    bulk = template["Resources"]["WooxyBulkFunction"]["Properties"]
    assert "ReservedConcurrentExecutions" not in bulk
    assert "WOOXY_SECRET_NAME" not in bulk["Environment"]["Variables"]


def test_the_bulk_function_gets_its_url_lifetime_and_job_budget_from_parameters(template: dict[str, Any]):
    from sms_status.config import BulkConfig, ConfigError

    variables = template["Resources"]["WooxyBulkFunction"]["Properties"]["Environment"]["Variables"]
    parameters = template["Parameters"]
    for variable, parameter in (
        ("BULK_RESULTS_URL_TTL", "BulkResultsUrlTtl"),
        ("BULK_MAX_RUNNING_JOBS", "BulkMaxRunningJobs"),
        ("BULK_MAX_RUNNING_JOBS_PER_CALLER", "BulkMaxRunningJobsPerCaller"),
    ):
        assert variables[variable] == {"Ref": parameter}
    assert (parameters["BulkResultsUrlTtl"]["Default"], parameters["BulkMaxRunningJobs"]["Default"]) == (900, 4)
    assert parameters["BulkMaxRunningJobsPerCaller"]["Default"] == 2
    # The code's defaults are the template's, and what the template allows the code takes.
    env = {"BULK_BUCKET_NAME": "b", "BULK_JOBS_TABLE_NAME": "t"}
    config = BulkConfig.from_env(env)
    assert (config.results_url_ttl, config.max_running_jobs, config.max_running_jobs_per_caller) == (900, 4, 2)
    for ttl in (parameters["BulkResultsUrlTtl"]["MinValue"], parameters["BulkResultsUrlTtl"]["MaxValue"]):
        assert BulkConfig.from_env({**env, "BULK_RESULTS_URL_TTL": str(ttl)}).results_url_ttl == ttl
    for bad in ("59", "604801"):
        with pytest.raises(ConfigError):
            BulkConfig.from_env({**env, "BULK_RESULTS_URL_TTL": bad})

"""Least privilege and bounded provider load, on the parsed template and on what SAM makes of it.

Every function and the state machine runs with a role of its own written out in template.yaml, never SAM's
`Policies`: with an SQS event SAM would also attach AWSLambdaSQSQueueExecutionRole (receive and delete on every
queue of the account). GRANTS is the whole of what each may do, resource by resource, as the code calls it;
the roles are compared with it both ways (nothing more, nothing missing). docs/security.md gives the reasons.
GRANTS is a reviewed summary; what the code really calls, error paths included, is recorded and checked against
the roles in test_iam_calls.py, so a call GRANTS forgot fails there.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from sms_status.config import ProviderConfig
from sms_status.model import Provider
from tests.infra.test_template import FUNCTIONS, ROOT, TEMPLATE_PATH, parameter_default, resources, template

SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
SAM_TRANSFORM = Path(__file__).with_name("sam_transform.py")

# What Lambda's SQS poller calls with the function's role (event source mappings; the same three actions as
# AWSLambdaSQSQueueExecutionRole, on the function's own queues instead of "*"). The code calls none of them.
CONSUME = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
# Lambda writes a function's logs with its role, into the group the template creates (so no CreateLogGroup).
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
# X-Ray has no resource-level permissions: trace data goes to Resource "*".
XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"}
# A state machine's CloudWatch log delivery: actions AWS accepts on Resource "*" only (Step Functions guide,
# "Logging using CloudWatch Logs"). They configure the delivery, they write no log events.
LOG_DELIVERY = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
# store.StatusStore: get (GetItem), get_many (BatchGetItem), update (a conditional PutItem). The local run's analytics
# scan it (local/analytics.py): no deployed role may scan, delete or batch-write.
STATUS_WRITES = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem"}
STATE_MACHINE = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-wooxy-bulk"
EXECUTIONS = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}-wooxy-bulk:*"
CHILD_EXECUTIONS = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}-wooxy-bulk/*"


def api_grants(prefix: str) -> dict[str, set[str]]:
    """A provider's API function: its secret (credentials.SecretSource, through the secrets extension), nothing else."""
    return {f"{prefix}Secret": {"secretsmanager:GetSecretValue"}, f"{prefix}LogGroup": LOGS, "*": XRAY}


def tracking_grants(prefix: str) -> dict[str, set[str]]:
    """A provider's tracking function: its secret, its two queues, the status table and the bus."""
    return {
        f"{prefix}Secret": {"secretsmanager:GetSecretValue"},
        f"{prefix}TrackingQueue": CONSUME,
        f"{prefix}RecheckQueue": CONSUME | {"sqs:SendMessage"},  # tracking.RecheckQueue: its own re-checks only
        "StatusTable": STATUS_WRITES,
        "StatusEventBus": {"events:PutEvents"},  # publish.EventPublisher
        f"{prefix}TrackingLogGroup": LOGS,
        "*": XRAY,
    }


GRANTS: dict[str, dict[str, set[str]]] = {
    "OpenMarketFunction": api_grants("OpenMarket"),
    "WooxyFunction": api_grants("Wooxy"),
    "WwtFunction": api_grants("Wwt"),
    "OpenMarketTrackingFunction": tracking_grants("OpenMarket"),
    "WooxyTrackingFunction": tracking_grants("Wooxy"),
    "WwtTrackingFunction": tracking_grants("Wwt"),
    # bulk.steps.run_chunk -> JobStore.record_chunk: a bulk chunk's reports (PutObject) and its counts (UpdateItem).
    "WooxyChunkFunction": {
        "WooxySecret": {"secretsmanager:GetSecretValue"},
        "BulkBucket/jobs/*/chunks/*": {"s3:PutObject"},
        "BulkJobsTable": {"dynamodb:UpdateItem"},
        "WooxyChunkLogGroup": LOGS,
        "*": XRAY,
    },
    # bulk.storage.JobStore: ids, chunk lists and results in S3 (also the presigned results URL: GetObject), the job
    # item (put, get, update), starting a job and reading how it ended. ListBucket under jobs/: without it S3
    # answers a missing chunk file 403, not the 404 NoSuchKey that finish() handles.
    "WooxyBulkFunction": {
        "BulkBucket/jobs/*": {"s3:GetObject", "s3:PutObject"},
        "BulkBucket?s3:prefix=jobs/*": {"s3:ListBucket"},
        "BulkJobsTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        STATE_MACHINE: {"states:StartExecution"},
        EXECUTIONS: {"states:DescribeExecution"},
        "WooxyBulkLogGroup": LOGS,
        "*": XRAY,
    },
    # api.create_tracked_app: StatusStore.get only.
    "TrackedFunction": {"StatusTable": {"dynamodb:GetItem"}, "TrackedLogGroup": LOGS, "*": XRAY},
    # statemachine/wooxy_bulk.asl.json: the two functions' tasks, the chunk list (ItemReader), its own children.
    "WooxyBulkStateMachine": {
        "WooxyChunkFunction": {"lambda:InvokeFunction"},
        "WooxyBulkFunction": {"lambda:InvokeFunction"},
        "BulkBucket/jobs/*": {"s3:GetObject"},
        STATE_MACHINE: {"states:StartExecution"},
        CHILD_EXECUTIONS: {"states:DescribeExecution", "states:StopExecution"},
        "*": XRAY | LOG_DELIVERY,
    },
}
# Each provider's budget: the API function's reservation, and the tracking function whose two event sources
# each scale to the queue parameter (docs/operations.md, "Load limits").
API_LIMITS = {"OpenMarketFunction": "OpenMarketApiConcurrency", "WooxyFunction": "WooxyApiConcurrency", "WwtFunction": "WwtApiConcurrency"}
PROVIDER_LIMITS = {
    "OpenMarketTrackingFunction": "OpenMarketQueueConcurrency",
    "WooxyTrackingFunction": "WooxyQueueConcurrency",
    "WwtTrackingFunction": "WwtQueueConcurrency",
}
TRACKING_FUNCTIONS = {
    Provider.OPENMARKET: "OpenMarketTrackingFunction",
    Provider.WOOXY: "WooxyTrackingFunction",
    Provider.WWT: "WwtTrackingFunction",
}
LAMBDA_QUEUE_MINIMUM = 2  # the smallest MaximumConcurrency Lambda accepts on an SQS event source
WOOXY_CONCURRENT_REQUESTS = 10  # Wooxy: "Do not send more than 10 concurrent API requests"
# Deletes, whole-table reads and bulk writes: nothing the code does on a deployed path.
BROAD = re.compile(r":(Delete(Item|Table|Queue|Object|Bucket|Secret)|Scan|Query|BatchWrite|Purge)")
SKIP = re.compile(r"#\s*checkov:skip=(?P<id>[^:\s]*)(?::(?P<reason>.*))?$")


# --------------------------------------------------------------------------- reading the roles


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_of(owner: str) -> str:
    """The logical id of the role a function or state machine runs with (its `Role: !GetAtt <role>.Arn`)."""
    role = resources()[owner]["Properties"]["Role"]
    getatt = role["Fn::GetAtt"]
    name, attribute = getatt if isinstance(getatt, list) else getatt.split(".", 1)
    assert attribute == "Arn", owner
    return name


def target(resource: Any) -> str:
    """A statement's resource as a GRANTS key: a logical id, "<id>/<path>" for ${Id.Arn}/path, or the ARN text."""
    if resource == "*":
        return "*"
    if isinstance(resource, dict) and set(resource) == {"Ref"}:
        return resource["Ref"]
    if isinstance(resource, dict) and set(resource) == {"Fn::GetAtt"}:
        getatt = resource["Fn::GetAtt"]
        return getatt[0] if isinstance(getatt, list) else getatt.split(".")[0]
    if isinstance(resource, dict) and set(resource) == {"Fn::Sub"} and isinstance(resource["Fn::Sub"], str):
        return re.sub(r"^\$\{(\w+)\.Arn\}", r"\1", resource["Fn::Sub"])
    raise AssertionError(f"unexpected resource form {resource!r}")


def role_statements(role: str) -> list[dict[str, Any]]:
    """Every statement the role grants: its inline policies, role policies attached to it, and the template's
    own managed policies it lists. An AWS managed policy fails: its contents are not ours to check."""
    props = resources()[role]["Properties"]
    statements = [s for policy in props.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]
    for arn in props.get("ManagedPolicyArns", []):
        assert set(arn) == {"Ref"}, f"{role}: managed policy {arn!r}"
        assert resources()[arn["Ref"]]["Type"] == "AWS::IAM::ManagedPolicy", f"{role}: managed policy {arn!r}"
        statements += resources()[arn["Ref"]]["Properties"]["PolicyDocument"]["Statement"]
    for body in resources("AWS::IAM::RolePolicy").values():
        if body["Properties"]["RoleName"] == {"Ref": role}:
            statements += body["Properties"]["PolicyDocument"]["Statement"]
    return statements


def grants_of(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """{resource key: actions}; a grant limited to a key prefix (the one condition a role uses: StringLike on
    s3:prefix, for s3:ListBucket) is keyed "<resource>?s3:prefix=<pattern>"."""
    granted: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert not {"NotAction", "NotResource"} & set(statement)
        suffix = ""
        if "Condition" in statement:
            assert list(statement["Condition"]) == ["StringLike"], statement
            ((key, pattern),) = statement["Condition"]["StringLike"].items()
            assert key == "s3:prefix", statement
            assert as_list(statement["Action"]) == ["s3:ListBucket"], statement
            suffix = f"?s3:prefix={pattern}"
        for resource in as_list(statement["Resource"]):
            granted.setdefault(target(resource) + suffix, set()).update(as_list(statement["Action"]))
    return granted


def sqs_events(function: str) -> dict[str, dict[str, Any]]:
    events = resources()[function]["Properties"].get("Events", {})
    return {name: event["Properties"] for name, event in events.items() if event["Type"] == "SQS"}


@cache
def transformed() -> dict[str, Any]:
    """The template as SAM deploys it (its translator, offline)."""
    return sam_translate(TEMPLATE_PATH)


def sam_translate(path: Path) -> dict[str, Any]:
    assert SAM_PYTHON.exists(), "the SAM CLI venv is missing: make install creates .venv-sam"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
    command = [str(SAM_PYTHON), str(SAM_TRANSFORM), str(path)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


# --------------------------------------------------------------------------- roles


def test_every_function_and_state_machine_has_a_role_of_its_own() -> None:
    owners = set(resources("AWS::Serverless::Function")) | set(resources("AWS::Serverless::StateMachine"))
    assert owners == set(GRANTS)
    for owner in owners:
        assert "Policies" not in resources()[owner]["Properties"], f"{owner}: SAM Policies would add managed policies"
        assert role_of(owner) == f"{owner}Role"
        assert resources()[role_of(owner)]["Type"] == "AWS::IAM::Role"
    assert "Role" not in template()["Globals"]["Function"]  # one role for all would share every grant


@pytest.mark.parametrize("owner", sorted(GRANTS))
def test_role_grants_exactly_what_the_code_calls_on_its_own_resources(owner: str) -> None:
    assert grants_of(role_statements(role_of(owner))) == GRANTS[owner]


def test_grants_name_existing_resources_of_the_right_kind() -> None:
    # GRANTS itself: every logical id exists, and SQS/DynamoDB/secret actions name a queue/table/secret.
    kinds = {"sqs": "AWS::SQS::Queue", "dynamodb": "AWS::DynamoDB::Table", "secretsmanager": "AWS::SecretsManager::Secret"}
    for grants in GRANTS.values():
        for key, actions in grants.items():
            logical = re.split(r"[/?]", key)[0]
            if "$" in key or key == "*":
                continue
            assert logical in resources(), key
            for action in actions:
                if action.split(":")[0] in kinds:
                    assert resources()[logical]["Type"] == kinds[action.split(":")[0]], (key, action)
    # The state machine ARNs the roles build from its name are its ARNs.
    name = resources()["WooxyBulkStateMachine"]["Properties"]["Name"]
    assert name == {"Fn::Sub": "${AWS::StackName}-wooxy-bulk"}
    assert STATE_MACHINE.endswith(":stateMachine:" + name["Fn::Sub"])


def test_the_comparison_catches_a_broader_grant() -> None:
    # The checker itself: SAM's DynamoDBCrudPolicy on the status table would differ from GRANTS.
    crud = {"Effect": "Allow", "Action": ["dynamodb:DeleteItem", "dynamodb:Scan"], "Resource": {"Fn::GetAtt": ["StatusTable", "Arn"]}}
    widened = grants_of([*role_statements("TrackedFunctionRole"), crud])
    assert widened != GRANTS["TrackedFunction"]
    assert widened["StatusTable"] == {"dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:Scan"}


def test_no_role_deletes_or_scans_and_every_resource_wildcard_is_one_aws_requires() -> None:
    # On the roles as written (the exact comparison above also holds GRANTS itself to this).
    for owner in GRANTS:
        grants = grants_of(role_statements(role_of(owner)))
        actions = set().union(*grants.values())
        assert not {a for a in actions if BROAD.search(a)}, owner
        assert not {a for a in actions if "*" in a}, owner
        assert grants["*"] <= XRAY | (LOG_DELIVERY if owner == "WooxyBulkStateMachine" else set()), owner


@pytest.mark.parametrize("function", sorted(PROVIDER_LIMITS))
def test_a_function_consumes_exactly_the_queues_of_its_events(function: str) -> None:
    consumed = {target(event["Queue"]) for event in sqs_events(function).values()}
    granted = {key for key, actions in GRANTS[function].items() if actions >= CONSUME}
    assert consumed == granted == {key for key, actions in grants_of(role_statements(role_of(function))).items() if actions & CONSUME}


def test_only_the_tracking_functions_consume_queues() -> None:
    consumers = {function for function in resources("AWS::Serverless::Function") if sqs_events(function)}
    assert consumers == set(PROVIDER_LIMITS)


@pytest.mark.parametrize("provider", list(Provider))
def test_a_provider_function_reads_only_its_own_secret(provider: Provider) -> None:
    # The provider's API, tracking (and for Wooxy chunk) functions read its secret, and only its.
    readers = [FUNCTIONS[provider], TRACKING_FUNCTIONS[provider], *(["WooxyChunkFunction"] if provider is Provider.WOOXY else [])]
    for function in readers:
        granted = grants_of(role_statements(role_of(function)))
        secrets = {key for key in granted if key in resources("AWS::SecretsManager::Secret")}
        assert secrets == {f"{FUNCTIONS[provider].removesuffix('Function')}Secret"}, function
    # ... and no other role reads any secret.
    all_readers = {*FUNCTIONS.values(), *TRACKING_FUNCTIONS.values(), "WooxyChunkFunction"}
    others = [owner for owner in GRANTS if owner not in all_readers]
    assert others
    assert all(not set(grants_of(role_statements(role_of(o)))) & set(resources("AWS::SecretsManager::Secret")) for o in others)


@pytest.mark.parametrize("provider", list(Provider))
def test_an_api_function_has_no_queue_path_environment(provider: Provider) -> None:
    variables = resources()[FUNCTIONS[provider]]["Properties"]["Environment"]["Variables"]
    queue_path = {"STATUS_TABLE_NAME", "EVENT_BUS_NAME", "RECHECK_QUEUE_URL", "RECHECK_QUEUE_ARN", "QUERY_WINDOW_HOURS", "RECHECK_DELAYS"}
    assert not queue_path & set(variables)
    assert not {"BULK_BUCKET_NAME", "BULK_JOBS_TABLE_NAME"} & set(variables)


# --------------------------------------------------------------------------- trust


def trust(role: str) -> dict[str, Any]:
    (statement,) = resources()[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRole"
    return statement


# The account's API Gateway CloudWatch role is trusted as AWS documents it, with no condition (the comment on the
# resource cites the page): a condition on a key API Gateway may not send would fail the default deploy.
DOCUMENTED_TRUST_AS_IS = {"ApiGatewayLoggingRole"}


def test_every_role_is_assumed_by_one_service_for_this_account_only() -> None:
    for role in resources("AWS::IAM::Role"):
        statement = trust(role)
        assert set(statement["Principal"]) == {"Service"}, role
        assert isinstance(statement["Principal"]["Service"], str), role
        if role in DOCUMENTED_TRUST_AS_IS:
            continue
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}, role


def test_the_api_gateway_logging_role_is_trusted_as_aws_documents_it() -> None:
    statement = trust("ApiGatewayLoggingRole")
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert "Condition" not in statement
    assert resources()["ApiGatewayLoggingRole"]["Properties"]["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"}
    ]
    for owner in resources("AWS::Serverless::Function"):
        assert trust(role_of(owner))["Principal"]["Service"] == "lambda.amazonaws.com"


def test_the_state_machine_role_is_assumed_for_this_stacks_bulk_state_machine_only() -> None:
    statement = trust("WooxyBulkStateMachineRole")
    assert statement["Principal"]["Service"] == "states.amazonaws.com"
    pattern = statement["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
    pattern = pattern.replace("${AWS::Partition}", "aws").replace("${AWS::Region}", "us-east-1")
    pattern = pattern.replace("${AWS::AccountId}", "123456789012").replace("${AWS::StackName}", "prod")
    ours = "arn:aws:states:us-east-1:123456789012:{}:prod-wooxy-bulk{}"
    for kind, suffix in (("stateMachine", ""), ("execution", ":job-1"), ("mapRun", "/chunks:0b1c")):
        assert fnmatch.fnmatchcase(ours.format(kind, suffix), pattern), kind
    assert not fnmatch.fnmatchcase("arn:aws:states:us-east-1:123456789012:stateMachine:other-machine", pattern)
    assert not fnmatch.fnmatchcase("arn:aws:states:us-east-1:999999999999:stateMachine:prod-wooxy-bulk", pattern)
    assert not fnmatch.fnmatchcase("arn:aws:states:eu-west-1:123456789012:stateMachine:prod-wooxy-bulk", pattern)


# --------------------------------------------------------------------------- what SAM deploys


@pytest.mark.slow
def test_sam_adds_no_role_and_no_aws_managed_policy() -> None:
    deployed = transformed()["Resources"]
    roles = {name for name, body in deployed.items() if body["Type"] == "AWS::IAM::Role"}
    assert roles == set(resources("AWS::IAM::Role"))
    aws_managed = set(re.findall(r"iam::aws:policy/[\w/-]+", json.dumps(deployed)))
    # Only the account-wide API Gateway logging role, which AWS documents with this policy.
    assert aws_managed == {"iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"}
    for name, body in deployed.items():
        if body["Type"] == "AWS::Lambda::Function":
            assert body["Properties"]["Role"] == {"Fn::GetAtt": [f"{name}Role", "Arn"]}


@pytest.mark.slow
def test_sam_would_give_a_policies_function_with_an_sqs_event_every_queue(tmp_path: Path) -> None:
    # Why the roles are written out: the same function with `Policies` gets AWSLambdaSQSQueueExecutionRole.
    sample = tmp_path / "template.yaml"
    sample.write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Queue: {Type: AWS::SQS::Queue}\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      Runtime: python3.13\n      Handler: app.handler\n      CodeUri: fn/\n"
        "      Policies: [{Statement: [{Effect: Allow, Action: sqs:SendMessage, Resource: !GetAtt Queue.Arn}]}]\n"
        "      Events: {Q: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}}\n"
    )
    managed = json.dumps(sam_translate(sample)["Resources"]["FnRole"]["Properties"]["ManagedPolicyArns"])
    assert "AWSLambdaSQSQueueExecutionRole" in managed


@pytest.mark.slow
def test_every_deployed_queue_consumer_has_a_concurrency_ceiling() -> None:
    deployed = transformed()["Resources"]
    mappings = [body["Properties"] for body in deployed.values() if body["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == 2 * len(PROVIDER_LIMITS)
    for mapping in mappings:
        assert "MaximumConcurrency" in mapping["ScalingConfig"]
        assert "ReservedConcurrentExecutions" in deployed[mapping["FunctionName"]["Ref"]]["Properties"]


# --------------------------------------------------------------------------- bounded load


def allowed(parameter: str) -> list[int]:
    """Every value a Number parameter may take (its AllowedValues, else MinValue to MaxValue)."""
    spec = template()["Parameters"][parameter]
    if "AllowedValues" in spec:
        return [int(value) for value in spec["AllowedValues"]]
    return list(range(int(spec["MinValue"]), int(spec["MaxValue"]) + 1))


def evaluate(value: Any, parameters: dict[str, int]) -> int:
    """A number of the template (a literal, a Ref to a parameter, or Fn::Select over a Ref) for these parameter values."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return parameters[value["Ref"]]
    if isinstance(value, dict) and set(value) == {"Fn::Select"}:
        index, items = value["Fn::Select"]
        return int(items[evaluate(index, parameters)])
    return int(value)


def defaults() -> dict[str, int]:
    return {name: int(spec["Default"]) for name, spec in template()["Parameters"].items() if spec["Type"] == "Number"}


@pytest.mark.parametrize("function", sorted(PROVIDER_LIMITS))
def test_a_tracking_function_reserves_what_both_its_event_sources_may_use(function: str) -> None:
    # Lambda's SQS pollers ignore reserved concurrency when they scale: a reservation below the sum of the event
    # sources' MaximumConcurrency would throttle them (and drift messages to the DLQ). For every value the
    # parameter may take, not only the default.
    queue_param = PROVIDER_LIMITS[function]
    props = resources()[function]["Properties"]
    events = sqs_events(function)
    assert set(events) == {"TrackingQueue", "RecheckQueue"}
    for event in events.values():
        assert event["ScalingConfig"] == {"MaximumConcurrency": {"Ref": queue_param}}
    values = allowed(queue_param)
    assert int(parameter_default(queue_param)) in values
    for value in values:
        assert value >= LAMBDA_QUEUE_MINIMUM
        parameters = defaults() | {queue_param: value}
        sources = sum(evaluate(event["ScalingConfig"]["MaximumConcurrency"], parameters) for event in events.values())
        assert evaluate(props["ReservedConcurrentExecutions"], parameters) >= sources, value
        assert evaluate(props["ReservedConcurrentExecutions"], parameters) == 2 * value  # and no more than that


@pytest.mark.parametrize("function", sorted(API_LIMITS))
def test_an_api_function_reserves_its_own_bounded_share(function: str) -> None:
    props = resources()[function]["Properties"]
    assert props["ReservedConcurrentExecutions"] == {"Ref": API_LIMITS[function]}
    assert not sqs_events(function)
    assert max(allowed(API_LIMITS[function])) <= 50  # bounded however the stack is configured


def test_the_wooxy_shares_fit_wooxys_documented_limit() -> None:
    # Every path holds at most one Wooxy request per invocation at a time: the API function, the chunk function
    # (whose reservation is also the Map's MaxConcurrency, tests/unit/test_bulk_asl.py) and the tracking
    # function (a batch's 100-id chunks go one after another: tests/integration/test_tracking.py sees one in flight).
    # With the defaults the shares add up to at most Wooxy's 10.
    params = defaults()
    api = evaluate(resources()["WooxyFunction"]["Properties"]["ReservedConcurrentExecutions"], params)
    bulk = evaluate(resources()["WooxyChunkFunction"]["Properties"]["ReservedConcurrentExecutions"], params)
    tracking = resources()["WooxyTrackingFunction"]["Properties"]
    in_flight = 1
    queue = evaluate(tracking["ReservedConcurrentExecutions"], params) * in_flight
    assert (api, bulk, queue) == (2, 4, 4)
    assert api + bulk + queue <= WOOXY_CONCURRENT_REQUESTS
    assert resources()["WooxyChunkFunction"]["Properties"]["ReservedConcurrentExecutions"] == {"Ref": "WooxyBulkConcurrency"}
    # Each share alone can never exceed the limit either.
    assert max(allowed("WooxyApiConcurrency")) <= WOOXY_CONCURRENT_REQUESTS
    assert max(allowed("WooxyBulkConcurrency")) <= WOOXY_CONCURRENT_REQUESTS
    assert 2 * max(allowed("WooxyQueueConcurrency")) * in_flight <= WOOXY_CONCURRENT_REQUESTS


@pytest.mark.parametrize("provider", [Provider.OPENMARKET, Provider.WWT])
def test_a_fan_out_function_runs_the_fan_out_its_ceiling_assumes(provider: Provider) -> None:
    # The budget promises at most 10 requests in flight per invocation: the API function gets the config's
    # default fan-out (FAN_OUT unset), the tracking function sets it explicitly.
    function = FUNCTIONS[provider]
    assert "FAN_OUT" not in template()["Globals"]["Function"]["Environment"]["Variables"]
    assert "FAN_OUT" not in resources()[function]["Properties"]["Environment"]["Variables"]
    assert ProviderConfig.from_env(provider, {f"{provider.name}_SECRET_NAME": "placeholder"}).fan_out == 10
    assert "at most 10" in template()["Parameters"][API_LIMITS[function]]["Description"]
    tracking = resources()[TRACKING_FUNCTIONS[provider]]["Properties"]["Environment"]["Variables"]
    assert tracking["FAN_OUT"] == "10"
    assert ProviderConfig.from_env(provider, {f"{provider.name}_SECRET_NAME": "placeholder", "FAN_OUT": tracking["FAN_OUT"]}).fan_out == 10


@pytest.mark.parametrize("provider", list(Provider))
def test_a_tracking_function_batches_and_times_out_within_its_queues_visibility(provider: Provider) -> None:
    function = TRACKING_FUNCTIONS[provider]
    props = resources()[function]["Properties"]
    events = sqs_events(function)
    assert (events["TrackingQueue"]["BatchSize"], events["RecheckQueue"]["BatchSize"]) == (100, 10)
    for event in events.values():
        assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert event["MaximumBatchingWindowInSeconds"] == {"Ref": "TrackingBatchingWindow"}
    assert 0 <= min(allowed("TrackingBatchingWindow")) <= max(allowed("TrackingBatchingWindow")) <= 300
    assert props["Timeout"] == {"Ref": "TrackingFunctionTimeout"}
    timeouts = allowed("TrackingFunctionTimeout")
    assert int(parameter_default("TrackingFunctionTimeout")) == 60
    assert (min(timeouts), max(timeouts)) == (45, 300)
    # The merged lookup's deadline leaves time for the writes within the shortest allowed timeout (the tracking
    # code starts no record with less than the deadline and a margin left: a timeout equal to the deadline would
    # defer every record).
    deadline = float(props["Environment"]["Variables"]["BATCH_DEADLINE"])
    assert deadline == 30
    assert min(timeouts) - deadline >= 15
    # Both consumed queues: VisibilityTimeout = 6 x the function timeout, for every allowed timeout.
    mapping = template()["Mappings"]["TrackingTimeouts"]
    assert {int(key) for key in mapping} == set(timeouts)
    for event in events.values():
        queue = resources()[target(event["Queue"])]["Properties"]
        expected = {"Fn::FindInMap": ["TrackingTimeouts", {"Ref": "TrackingFunctionTimeout"}, "VisibilityTimeout"]}
        assert queue["VisibilityTimeout"] == expected
    for timeout in timeouts:
        assert int(mapping[str(timeout)]["VisibilityTimeout"]) == 6 * timeout


def test_the_wooxy_tracking_function_has_its_own_service_name() -> None:
    variables = resources()["WooxyTrackingFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "wooxy-tracking"


def test_the_stage_throttles_every_method() -> None:
    (settings,) = [s for s in resources()["SmsStatusApi"]["Properties"]["MethodSettings"] if s["ResourcePath"] == "/*"]
    assert settings["HttpMethod"] == "*"
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    # Within API Gateway's account defaults (10,000 requests per second, a burst of 5,000).
    params = template()["Parameters"]
    assert 0 < int(parameter_default("ApiThrottlingRateLimit")) <= int(params["ApiThrottlingRateLimit"]["MaxValue"]) <= 10_000
    assert 0 < int(parameter_default("ApiThrottlingBurstLimit")) <= int(params["ApiThrottlingBurstLimit"]["MaxValue"]) <= 5_000


def test_the_two_post_bulk_routes_have_a_lower_throttle_of_their_own() -> None:
    settings = {(s["ResourcePath"], s["HttpMethod"]): s for s in resources()["SmsStatusApi"]["Properties"]["MethodSettings"]}
    for path in ("/~1wooxy~1status~1bulk", "/~1wooxy~1bulk-jobs"):  # CloudFormation's encoding of "/"
        bulk = settings[(path, "POST")]
        assert bulk["ThrottlingRateLimit"] == {"Ref": "BulkThrottlingRateLimit"}
        assert bulk["ThrottlingBurstLimit"] == {"Ref": "BulkThrottlingBurstLimit"}
        assert (bulk["DataTraceEnabled"], bulk["LoggingLevel"]) == (False, "OFF")
    assert int(parameter_default("BulkThrottlingRateLimit")) < int(parameter_default("ApiThrottlingRateLimit"))
    assert int(parameter_default("BulkThrottlingBurstLimit")) < int(parameter_default("ApiThrottlingBurstLimit"))


# --------------------------------------------------------------------------- data, scanner, SAM lint


def test_the_status_table_is_protected_from_deletion() -> None:
    table = resources()["StatusTable"]
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_every_checkov_skip_sits_in_a_resource_and_says_why() -> None:
    lines = TEMPLATE_PATH.read_text().splitlines()
    skips = [(number, SKIP.search(line)) for number, line in enumerate(lines) if "checkov:skip" in line]
    assert skips  # guards the loop below against finding nothing
    for number, match in skips:
        assert match, lines[number]
        assert re.fullmatch(r"CKV_AWS_\d+", match["id"]), lines[number]
        assert len((match["reason"] or "").strip()) >= 40, f"line {number + 1}: give a reason a reviewer can judge"
        # Inside a resource: after its Type line, before its properties (checkov reads the resource's own lines).
        above = number - 1
        while SKIP.search(lines[above]):
            above -= 1
        assert re.fullmatch(r"    Type: AWS::\S+", lines[above]), f"line {number + 1}"


@pytest.mark.slow
def test_sam_validate_lint_passes() -> None:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [str(ROOT / ".venv-sam" / "bin" / "sam"), "validate", "--lint", "--region", "us-east-1", "--template-file", str(TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

"""IAM that fails where AWS would: every AWS call the code makes, on every path we drive, is allowed by the role
of the function that makes it, and every grant of a role is used by some call.

The calls are not a hand-kept list: the stack is built from template.yaml on moto (`local.stack.LocalAws`), each
function runs its real handler with realistic events (API routes, queue batches and their re-checks, bulk jobs
inline and as jobs, the state machine's own steps, a chunk file lost before Finish), and a hook on botocore
records every call our code makes (`BaseClient._make_api_call`, plus presigned URLs, which the caller later uses
with the function's credentials) together with the function it ran in and how it ended. Each call is turned into
what IAM authorises, as AWS documents it:

- SendMessageBatch is authorised by `sqs:SendMessage` (SQS API Reference, SendMessageBatch);
- BatchGetItem by `dynamodb:BatchGetItem` on each table it names;
- a GetObject (or HeadObject) of a missing key answers 404 NoSuchKey only to a caller that also has
  `s3:ListBucket` on the bucket (with `s3:prefix` the key), 403 AccessDenied to any other (S3 API Reference,
  GetObject, "Permissions"): a NoSuchKey the code handles needs that grant too;
- a presigned GetObject URL is `s3:GetObject` for the signing role;
- PutEvents is `events:PutEvents` on each entry's bus.

Then each is evaluated against the role's statements, resolved to the local stack's ARNs (wildcards and the
StringLike/StringEquals conditions the roles use), as IAM would. moto itself checks no IAM, so without this a
missing grant would only show on AWS.
"""

from __future__ import annotations

import contextvars
import fnmatch
import json
import re
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from local.function_env import install_function_environ
from local.lambda_runtime import LocalFunction
from local.sandboxes import openmarket as openmarket_module
from local.sandboxes import wooxy as wooxy_module
from local.sandboxes import wwt as wwt_module
from local.sandboxes.openmarket import OpenMarketSandbox
from local.sandboxes.wooxy import WooxySandbox
from local.sandboxes.wwt import WwtSandbox
from local.secrets_extension import SecretsExtension
from local.stack import LocalAws
from local.template import ACCOUNT, REGION, substitute
from sms_status.credentials import TOKEN_HEADER, clear_caches
from tests.apigw import rest_event
from tests.infra.test_least_privilege import CONSUME, LOG_DELIVERY, LOGS, XRAY, as_list, role_of, role_statements
from tests.infra.test_template import resources
from tests.sqs_events import sqs_record

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# The local Parameters and Secrets extension counts as the function it serves: on AWS the extension calls Secrets
# Manager with the role of the function it runs in.
OUR_CODE = (str(ROOT / "layers"), str(ROOT / "functions"), str(ROOT / "local" / "secrets_extension.py"))
STACK_SESSIONS: dict[str, str] = {}  # session token -> the function it was given to (LocalAws.session_tokens)
RUNNING: contextvars.ContextVar[str | None] = contextvars.ContextVar("iam_calls_function", default=None)
# Functions whose next BatchGetItem is followed by another writer bumping every item it read, as a duplicate
# delivery processed at the same time would: their conditional writes then conflict and re-read the item.
CONFLICT_AFTER_NEXT_READ: set[str] = set()
# What a role holds that no call of the code shows: Lambda's poller (CONSUME), its log writes, X-Ray.
NOT_CALLED_BY_CODE = CONSUME | LOGS | XRAY
FUNCTIONS = [
    "OpenMarketFunction",
    "WooxyFunction",
    "WwtFunction",
    "OpenMarketTrackingFunction",
    "WooxyTrackingFunction",
    "WwtTrackingFunction",
    "TrackedFunction",
    "WooxyBulkFunction",
    "WooxyChunkFunction",
]


@dataclass(frozen=True)
class Call:
    function: str
    service: str  # botocore's service name
    operation: str
    params: dict[str, Any] = field(hash=False, compare=False)
    error: str | None = None  # the AWS error code it ended with, if any
    presigned: bool = False


@dataclass(frozen=True)
class Need:
    """One authorisation a call needs: an action on a resource, with the request's condition keys."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


# --------------------------------------------------------------------------- recording the calls


def made_by_our_code() -> bool:
    """Whether the nearest caller outside the AWS SDK and Powertools is our code (not moto's interpreter, not the
    test or the local stack doing set-up)."""
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(OUR_CODE):
            return True
        if not any(part in path for part in ("/botocore/", "/boto3/", "/aws_lambda_powertools/", "/s3transfer/", __file__)):
            return False
        frame = frame.f_back
    return False


@pytest.fixture(scope="module")
def calls() -> Iterator[list[Call]]:
    """Every AWS call our code makes while the module's stack runs, with the function that made it."""
    recorded: list[Call] = []
    patch = pytest.MonkeyPatch()
    make_api_call = BaseClient._make_api_call
    emit_api_params = BaseClient._emit_api_params
    invoke = LocalFunction.invoke
    submit = ThreadPoolExecutor.submit
    answer = SecretsExtension.answer

    def recording_call(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        function = RUNNING.get()
        ours = function is not None and made_by_our_code()
        service = self.meta.service_model.service_name
        try:
            answer = make_api_call(self, operation, params)
        except ClientError as error:
            if ours:
                recorded.append(Call(function, service, operation, dict(params), error.response["Error"]["Code"]))
            raise
        if ours:
            recorded.append(Call(function, service, operation, dict(params)))
            if operation == "BatchGetItem" and function in CONFLICT_AFTER_NEXT_READ:
                CONFLICT_AFTER_NEXT_READ.discard(function)
                write_in_between(self, answer)
        return answer

    def recording_presign(self: BaseClient, api_params: dict[str, Any], operation_model: Any, context: dict[str, Any]) -> Any:
        function = RUNNING.get()
        if context.get("is_presign_request") and function is not None and made_by_our_code():
            service = self.meta.service_model.service_name
            recorded.append(Call(function, service, operation_model.name, dict(api_params), presigned=True))
        return emit_api_params(self, api_params, operation_model, context)

    def invoking(self: LocalFunction, event: Any) -> Any:
        # Each Lambda function has containers of its own, so nothing one fetched is cached for another; here they
        # share a process, and the secret cache would hide the second function's GetSecretValue.
        clear_caches()
        token = RUNNING.set(self.logical_id)
        try:
            return invoke(self, event)
        finally:
            RUNNING.reset(token)

    def answering(self: SecretsExtension, path: str, headers: Any) -> Any:
        # The extension's request carries the calling function's session token (each function has its own).
        token = RUNNING.set(STACK_SESSIONS.get(headers.get(TOKEN_HEADER) or ""))
        try:
            return answer(self, path, headers)
        finally:
            RUNNING.reset(token)

    def submitting(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        # A function's worker threads (e.g. the Finish step's 16 chunk reads) still run for that function.
        return submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

    patch.setattr(BaseClient, "_make_api_call", recording_call)
    patch.setattr(BaseClient, "_emit_api_params", recording_presign)
    patch.setattr(LocalFunction, "invoke", invoking)
    patch.setattr(ThreadPoolExecutor, "submit", submitting)
    patch.setattr(SecretsExtension, "answer", answering)
    try:
        yield recorded
    finally:
        patch.undo()


# --------------------------------------------------------------------------- the stack and the paths driven


@pytest.fixture(scope="module")
def stack(calls: list[Call]) -> Iterator[LocalAws]:
    install_function_environ()
    with OpenMarketSandbox(hang=5) as openmarket, WooxySandbox(hang=5) as wooxy, WwtSandbox(hang=5) as wwt:
        openmarket.add_message("T-IAM-1", steps=[(0, 2)])
        wooxy.add_message("5d91537bd132fdf45916520a", steps=[(0, "queued")])
        wwt.add_message("211", steps=[(0, "sent")], reference="ext19")
        parameters = {
            "OpenMarketBaseUrl": openmarket.base_url,
            "WooxyBaseUrl": wooxy.base_url,
            "WwtBaseUrl": wwt.base_url,
            "RecheckDelays": "1",
        }
        secrets = {
            "OpenMarketSecret": openmarket_module.DEFAULT_CREDENTIALS,
            "WooxySecret": wooxy_module.DEFAULT_CREDENTIALS,
            "WwtSecret": wwt_module.DEFAULT_CREDENTIALS,
        }
        aws = LocalAws(parameters, secrets).start()
        STACK_SESSIONS.update(aws.session_tokens)
        try:
            drive(aws, wooxy)
            yield aws
        finally:
            aws.stop()


def write_in_between(client: Any, answer: dict[str, Any]) -> None:
    """Another writer's update of every item a function just read (not a call of the function)."""
    token = RUNNING.set(None)
    try:
        for table, items in answer.get("Responses", {}).items():
            for item in items:
                client.update_item(
                    TableName=table,
                    Key={"pk": item["pk"]},
                    UpdateExpression="SET version = version + :one",
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )
    finally:
        RUNNING.reset(token)


def invoke(aws: LocalAws, function: str, event: dict[str, Any]) -> Any:
    return aws.functions[function].invoke(event)


def event_file(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / name).read_text())


def drive(aws: LocalAws, wooxy: WooxySandbox) -> None:
    """Every path of every function, error paths included."""
    # The API functions: one id and a batch each.
    for provider, function in (("openmarket", "OpenMarketFunction"), ("wooxy", "WooxyFunction"), ("wwt", "WwtFunction")):
        for name in ("get_message.json", "post_status.json"):
            invoke(aws, function, event_file(f"{provider}/{name}"))
    # The queue path: a sender's message (a known id and one the provider does not know yet, which is re-checked),
    # then the re-check the function sent itself.
    sqs = boto3.client("sqs", region_name=REGION)
    tracked = {
        "OpenMarket": {"ids": ["T-IAM-1", "T-IAM-unknown"]},
        "Wooxy": {"ids": ["5d91537bd132fdf45916520a", "5d91537bd132fdf4591652ff"]},
        "Wwt": {"ids": ["211", "999999"]},
    }
    for provider, body in tracked.items():
        function = f"{provider}TrackingFunction"
        for queue, message in ((f"{provider}TrackingQueue", json.dumps(body)), (f"{provider}RecheckQueue", None)):
            url, arn = aws.queues[queue], aws.physical[queue].attrs["Arn"]
            if message is not None:
                sqs.send_message(QueueUrl=url, MessageBody=message)
            received = receive(sqs, url)
            assert received, f"nothing arrived on {queue}"
            if message is None:  # the re-check: its items exist now, and another writer gets there first
                CONFLICT_AFTER_NEXT_READ.add(function)
            invoke(aws, function, {"Records": [sqs_record(m, arn) for m in received]})
    # GET /tracked: a stored message and an unknown one.
    invoke(aws, "TrackedFunction", rest_event("GET", "/tracked/{provider}/{id}", {"provider": "wwt", "id": "211"}))
    invoke(aws, "TrackedFunction", rest_event("GET", "/tracked/{provider}/{id}", {"provider": "wwt", "id": "404404"}))
    # Bulk: inline (the state machine runs the chunk function and Finish), then a job followed while it runs
    # (the job document, how its execution is doing) and once done (its results URL).
    ids = [f"{n:024x}" for n in range(1, 151)]
    for key in ids[:100]:
        wooxy.add_message(key, steps=[(0, "sent")])
    bulk = "WooxyBulkFunction"
    answer = invoke(aws, bulk, rest_event("POST", "/wooxy/status/bulk", body={"ids": ids}))
    assert answer["statusCode"] == 200, answer
    wooxy.latency = 0.5
    answer = invoke(aws, bulk, rest_event("POST", "/wooxy/bulk-jobs", body={"ids": ids}))
    job_id = json.loads(answer["body"])["job_id"]
    job = json.loads(invoke(aws, bulk, rest_event("GET", "/wooxy/bulk-jobs/{job_id}", {"job_id": job_id}))["body"])
    assert job["state"] == "running"
    deadline = time.monotonic() + 60
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        job = json.loads(invoke(aws, bulk, rest_event("GET", "/wooxy/bulk-jobs/{job_id}", {"job_id": job_id}))["body"])
    assert job["state"] == "succeeded", job
    wooxy.latency = 0.0
    # A chunk file lost before Finish: the step reads it, finds no such key and gives its ids error reports.
    s3 = boto3.client("s3", region_name=REGION)
    s3.delete_object(Bucket=aws.buckets["BulkBucket"], Key=f"jobs/{job_id}/chunks/00001.jsonl")
    # Finish changes only a running job: put this one back to where its Finish step would find it.
    jobs_table = boto3.resource("dynamodb", region_name=REGION).Table(aws.tables["BulkJobsTable"])
    jobs_table.update_item(
        Key={"job_id": job_id},
        UpdateExpression="SET #state = :running",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={":running": "running"},
    )
    assert invoke(aws, bulk, {"bulk_finish": {"job_id": job_id}})["total"] == len(ids)


def receive(sqs: Any, url: str, timeout: float = 15) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=1)
        if messages.get("Messages"):
            return messages["Messages"]
    return []


# --------------------------------------------------------------------------- what IAM authorises


def needs(call: Call, aws: LocalAws) -> list[Need]:
    """What IAM must allow for this call to get the answer the code expects."""
    p = call.params
    match call.service, call.operation:
        case "secretsmanager", "GetSecretValue":
            return [Need("secretsmanager:GetSecretValue", secret_arn(aws, p["SecretId"]))]
        case "sqs", ("SendMessage" | "SendMessageBatch"):
            return [Need("sqs:SendMessage", queue_arn(aws, p["QueueUrl"]))]  # SendMessageBatch: sqs:SendMessage
        case "sqs", operation:
            return [Need(f"sqs:{operation}", queue_arn(aws, p["QueueUrl"]))]
        case "dynamodb", ("BatchGetItem" | "BatchWriteItem") as operation:
            return [Need(f"dynamodb:{operation}", table_arn(table)) for table in p["RequestItems"]]
        case "dynamodb", "TransactWriteItems":
            # IAM authorises each item by its own action (no action of the transaction's own): Update -> UpdateItem ...
            actions = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
            return [
                Need(f"dynamodb:{actions[kind]}", table_arn(request["TableName"]))
                for item in p["TransactItems"]
                for kind, request in item.items()
            ]
        case "dynamodb", operation:
            return [Need(f"dynamodb:{operation}", table_arn(p["TableName"]))]
        case "events", "PutEvents":
            return [Need("events:PutEvents", bus_arn(entry.get("EventBusName", "default"))) for entry in p["Entries"]]
        case "s3", ("GetObject" | "HeadObject"):
            need = [Need("s3:GetObject", f"arn:aws:s3:::{p['Bucket']}/{p['Key']}")]
            if call.error in ("NoSuchKey", "404", "NotFound"):
                # Only a caller with s3:ListBucket is told NoSuchKey; any other gets 403 AccessDenied.
                need.append(Need("s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}", (("s3:prefix", p["Key"]),)))
            return need
        case "s3", "PutObject":
            return [Need("s3:PutObject", f"arn:aws:s3:::{p['Bucket']}/{p['Key']}")]
        case "s3", ("ListObjectsV2" | "ListObjects"):
            return [Need("s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}", (("s3:prefix", p.get("Prefix", "")),))]
        case "stepfunctions", "StartExecution":
            return [Need("states:StartExecution", p["stateMachineArn"])]
        case "stepfunctions", ("DescribeExecution" | "StopExecution") as operation:
            return [Need(f"states:{operation}", p["executionArn"])]
    raise AssertionError(f"{call.function} calls {call.service}.{call.operation}: teach needs() what IAM authorises it")


def secret_arn(aws: LocalAws, secret_id: str) -> str:
    for physical in aws.physical.values():
        if secret_id in (physical.attrs.get("Id"), physical.attrs.get("Name")) and physical.attrs.get("Id", "").startswith("arn:"):
            return physical.attrs["Id"]
    return secret_id


def queue_arn(aws: LocalAws, url: str) -> str:
    (arn,) = [aws.physical[logical].attrs["Arn"] for logical, queue_url in aws.queues.items() if queue_url == url]
    return arn


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name.rsplit('/', 1)[-1]}"


def bus_arn(name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}"


def statements_of(aws: LocalAws, function: str) -> list[dict[str, Any]]:
    """The function's role, every statement resolved to the local stack's ARNs."""
    return aws.resolver().resolve(role_statements(role_of(function)))


def matches(pattern: str, value: str) -> bool:
    """IAM's wildcard match: * any run of characters, ? one character, nothing else special."""
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def conditions_hold(statement: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in statement.get("Condition", {}).items():
        for key, expected in tests.items():
            if key not in context:
                return False  # a condition on a key the request does not carry does not match
            if operator == "StringLike" and not any(matches(value, context[key]) for value in as_list(expected)):
                return False
            if operator == "StringEquals" and context[key] not in as_list(expected):
                return False
            if operator not in ("StringLike", "StringEquals"):
                raise AssertionError(f"teach conditions_hold {operator}")
    return True


def granting(statements: list[dict[str, Any]], need: Need) -> list[dict[str, Any]]:
    """The Allow statements that authorise this need (no role here has a Deny)."""
    assert all(statement["Effect"] == "Allow" for statement in statements)
    return [
        statement
        for statement in statements
        if any(matches(action.lower(), need.action.lower()) for action in as_list(statement["Action"]))
        and any(matches(resource, need.resource) for resource in as_list(statement["Resource"]))
        and conditions_hold(statement, dict(need.context))
    ]


# --------------------------------------------------------------------------- the checks


def test_every_function_made_calls(stack: LocalAws, calls: list[Call]) -> None:
    by_function = {call.function for call in calls}
    assert by_function == set(FUNCTIONS)
    # The paths that need more than their happy case really ran.
    assert any(call.operation in ("SendMessage", "SendMessageBatch") for call in calls)
    assert any(call.operation == "GetObject" and call.error == "NoSuchKey" for call in calls)
    assert any(call.presigned for call in calls)
    assert any(call.operation == "DescribeExecution" for call in calls)
    assert any(call.operation == "PutItem" and call.error == "ConditionalCheckFailedException" for call in calls)


def needed_by(function: str, calls: list[Call], aws: LocalAws) -> set[Need]:
    return {need for call in calls if call.function == function for need in needs(call, aws)}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_call_is_allowed_by_the_functions_role(stack: LocalAws, calls: list[Call], function: str) -> None:
    statements = statements_of(stack, function)
    refused = sorted(
        f"{need.action} on {need.resource} {dict(need.context) or ''}"
        for need in needed_by(function, calls, stack)
        if not granting(statements, need)
    )
    assert refused == [], f"{function}'s role would refuse on AWS: {refused}"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_grant_is_used_by_a_call(stack: LocalAws, calls: list[Call], function: str) -> None:
    # The other way, action by action: a grant no call needs is more than the code does (Lambda's poller, its
    # logs and X-Ray aside, which no call of the code shows).
    statements = statements_of(stack, function)
    used = {(id(statement), need.action.lower()) for need in needed_by(function, calls, stack) for statement in granting(statements, need)}
    unused = [
        f"{statement.get('Sid')}: {action}"
        for statement in statements
        for action in as_list(statement["Action"])
        if action not in NOT_CALLED_BY_CODE and (id(statement), action.lower()) not in used
    ]
    assert unused == [], f"{function}: granted but never called: {unused}"


def test_the_checker_refuses_a_missing_key_without_list_bucket(stack: LocalAws) -> None:
    # The finding this test was written for: s3:GetObject alone makes a missing chunk file 403, not NoSuchKey.
    call = Call("WooxyBulkFunction", "s3", "GetObject", {"Bucket": "b", "Key": "jobs/j/chunks/00001.jsonl"}, "NoSuchKey")
    only_get = [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/jobs/*"}]
    with_list = [
        *only_get,
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b", "Condition": {"StringLike": {"s3:prefix": "jobs/*"}}},
    ]
    elsewhere = [
        *only_get,
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b", "Condition": {"StringLike": {"s3:prefix": "other/*"}}},
    ]
    assert [bool(granting(only_get, need)) for need in needs(call, stack)] == [True, False]
    assert [bool(granting(with_list, need)) for need in needs(call, stack)] == [True, True]
    assert [bool(granting(elsewhere, need)) for need in needs(call, stack)] == [True, False]


def test_the_checker_knows_batch_calls_by_the_action_that_authorises_them(stack: LocalAws) -> None:
    url, arn = next(iter(stack.queues.values())), stack.physical[next(iter(stack.queues))].attrs["Arn"]
    batch = Call("X", "sqs", "SendMessageBatch", {"QueueUrl": url, "Entries": []})
    assert needs(batch, stack) == [Need("sqs:SendMessage", arn)]
    get_many = Call("X", "dynamodb", "BatchGetItem", {"RequestItems": {"t1": {}, "t2": {}}})
    assert [need.action for need in needs(get_many, stack)] == ["dynamodb:BatchGetItem"] * 2
    with pytest.raises(AssertionError, match="teach"):
        needs(Call("X", "kinesis", "PutRecord", {}), stack)


# --------------------------------------------------------------------------- the state machine, from its definition


def state_machine_needs(aws: LocalAws) -> set[Need]:
    """What the bulk state machine's role is used for, read from statemachine/wooxy_bulk.asl.json: each Lambda task
    (lambda:InvokeFunction on its FunctionName), the Distributed Map's S3 item reader (s3:GetObject on its key)
    and its child executions (Step Functions Developer Guide, "IAM policies for using Distributed Map states":
    states:StartExecution on the state machine, DescribeExecution and StopExecution on its executions)."""
    properties = resources()["WooxyBulkStateMachine"]["Properties"]
    substitutions = aws.resolver().resolve(properties["DefinitionSubstitutions"])
    definition = json.loads(substitute((ROOT / properties["DefinitionUri"]).read_text(), substitutions))
    machine = aws.physical["WooxyBulkStateMachine"].attrs["Arn"]
    found: set[Need] = set()

    def walk(states: dict[str, Any]) -> None:
        for state in states.values():
            if state.get("Resource") == "arn:aws:states:::lambda:invoke":
                found.add(Need("lambda:InvokeFunction", state["Parameters"]["FunctionName"]))
            reader = state.get("ItemReader")
            if reader:
                assert reader["Resource"] == "arn:aws:states:::s3:getObject", reader
                key = reader["Parameters"].get("Key") or re.sub(r"\{\}", "job", re.search(r"'([^']*)'", reader["Parameters"]["Key.$"])[1])
                found.add(Need("s3:GetObject", f"arn:aws:s3:::{reader['Parameters']['Bucket']}/{key}"))
            processor = state.get("ItemProcessor") or {}
            if processor.get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
                name = machine.rsplit(":", 1)[1]
                child = machine.replace(":stateMachine:", ":execution:") + "/map-run:child"
                found.add(Need("states:StartExecution", machine))
                found.update(Need(f"states:{action}", child) for action in ("DescribeExecution", "StopExecution"))
                assert name in child
            if "ItemProcessor" in state:
                walk(state["ItemProcessor"]["States"])

    walk(definition["States"])
    return found


def test_the_state_machine_role_allows_every_step_of_its_definition_and_nothing_else(stack: LocalAws) -> None:
    statements = statements_of(stack, "WooxyBulkStateMachine")
    needed = state_machine_needs(stack)
    assert {need.action for need in needed} == {
        "lambda:InvokeFunction",
        "s3:GetObject",
        "states:StartExecution",
        "states:DescribeExecution",
        "states:StopExecution",
    }
    assert [need for need in needed if not granting(statements, need)] == []
    used = {(id(statement), need.action.lower()) for need in needed for statement in granting(statements, need)}
    unused = [
        f"{statement.get('Sid')}: {action}"
        for statement in statements
        for action in as_list(statement["Action"])
        if action not in XRAY | LOG_DELIVERY and (id(statement), action.lower()) not in used
    ]
    assert unused == []

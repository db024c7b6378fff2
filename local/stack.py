"""The AWS side of the local run: moto in-process, built from template.yaml so it matches the deployed stack.

`LocalAws.start()` reads the template (`local.template`), gives every resource a local physical id (names,
URLs, ARNs), resolves the intrinsics with parameters set to local values, and creates in moto: the secrets
(seeded with provider credentials), the SQS queues with their redrive policies, the S3 buckets with their
lifecycle rules, the DynamoDB tables, the event buses (plus a rule to a capture queue so the tour can show
change events), the functions (in moto's Lambda so ARNs exist) and the state machines (DefinitionUri +
DefinitionSubstitutions). The functions themselves run in this process (`local.lambda_runtime`), and
state machine Lambda tasks reach them through `local.lambda_routing`. SQS event sources become
`EventSourceMapping`s (BatchSize, MaximumBatchingWindowInSeconds, ScalingConfig.MaximumConcurrency,
ReportBatchItemFailures) for `local.queue_worker`; values Lambda would refuse stop the build.

moto's SQS is made atomic per request and its receives cheap (`_local_sqs`), so several invocations of one
queue can settle their batches while its poller receives, as on SQS.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import zipfile
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.lambda_runtime import LocalFunction
from local.secrets_extension import SecretsExtension
from local.template import (
    ACCOUNT,
    REGION,
    ROOT,
    STACK,
    TEMPLATE,
    LocalSetupError,
    Physical,
    Resolver,
    arn,
    load_template_checked,
    substitute,
)

CAPTURE_QUEUE = f"{STACK}-change-events"  # EventBridge rule target: what the tour shows as change events

# Never a real account: moto answers every call made with these.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


# Lambda's SQS event source: what it accepts, and how many concurrent invocations it starts with when
# ScalingConfig.MaximumConcurrency is not set (its initial scaling: five pollers, so five batches at once).
BATCH_SIZE_RANGE = (1, 10_000)
BATCHING_WINDOW_RANGE = (0, 300)
MAXIMUM_CONCURRENCY_RANGE = (2, 1_000)
DEFAULT_EVENT_SOURCE_CONCURRENCY = 5


@dataclass(frozen=True)
class EventSourceMapping:
    """Lambda's SQS poller configuration for one queue -> function pair."""

    function: LocalFunction
    queue_url: str
    queue_arn: str
    batch_size: int = 10
    report_batch_item_failures: bool = False
    enabled: bool = True
    event: str = ""  # the SAM event's name (TrackingQueue: the senders' queue; RecheckQueue: the service's own)
    batching_window_seconds: int = 0  # MaximumBatchingWindowInSeconds
    maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency; None: not set

    @property
    def concurrency(self) -> int:
        """How many invocations of this mapping may run at once: MaximumConcurrency, else Lambda's initial 5."""
        return self.maximum_concurrency if self.maximum_concurrency is not None else DEFAULT_EVENT_SOURCE_CONCURRENCY


def _event_source_settings(where: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """BatchSize, MaximumBatchingWindowInSeconds and ScalingConfig.MaximumConcurrency of an SQS event source,
    refused (LocalSetupError) where Lambda would refuse the mapping, so a setting that cannot deploy cannot run."""

    def number(name: str, value: Any, bounds: tuple[int, int]) -> int:
        try:
            parsed = int(value)
        except (TypeError, ValueError):
            raise LocalSetupError(f"{where}: {name} must be a whole number, got {value!r}") from None
        if not bounds[0] <= parsed <= bounds[1]:
            raise LocalSetupError(f"{where}: {name} must be {bounds[0]}-{bounds[1]}, got {parsed}")
        return parsed

    batch_size = number("BatchSize", props.get("BatchSize", 10), BATCH_SIZE_RANGE)
    window = number("MaximumBatchingWindowInSeconds", props.get("MaximumBatchingWindowInSeconds", 0), BATCHING_WINDOW_RANGE)
    if batch_size > 10 and window == 0:
        raise LocalSetupError(f"{where}: a BatchSize over 10 needs MaximumBatchingWindowInSeconds of at least 1 (Lambda refuses it)")
    scaling = props.get("ScalingConfig") or {}
    raw = scaling.get("MaximumConcurrency") if isinstance(scaling, Mapping) else None
    concurrency = None if raw is None else number("ScalingConfig.MaximumConcurrency", raw, MAXIMUM_CONCURRENCY_RANGE)
    return {"batch_size": batch_size, "batching_window_seconds": window, "maximum_concurrency": concurrency}


# The SQS operations that read or change a queue's messages.
_SQS_MESSAGE_OPERATIONS = (
    "send_message",
    "send_message_batch",
    "receive_message",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "purge_queue",
    "get_queue_attributes",
)


def _local_sqs() -> ExitStack:
    """Patches (an ExitStack to close) that make moto's SQS fit a local run with concurrent pollers:

    - Atomic: SQS applies each request atomically; moto does not. Its delete rebuilds a queue's message list (a
      message sent meanwhile is lost) and its receive copies the set of in-flight messages a delete changes
      ("Set changed size during iteration"). With several invocations of one queue settling their batches
      while the poller receives, both happened. So one lock serializes the operations on messages, released
      while a long poll waits (the wait is what lets a send in).
    - Every call costs one pass over the queue, as SQS answers each in constant time, where moto's cost grows with
      the backlog (10,000 queued messages: minutes of CPU): a receive checks each message's retention period by
      computing every attribute of the queue, which counts every message in it (0.2 s a receive with 250 queued,
      so a poller could not gather a 100-record batch within a 1 s batching window): only that attribute is read;
      a send builds the same attributes for a FIFO-only setting: a standard queue's send skips them; a batch
      delete deletes its entries one at a time, two passes each: all go in one pass, with the same answers.
    """
    from unittest import mock

    import moto.sqs.models as sqs_models

    lock = threading.RLock()
    patches = ExitStack()

    def atomic(original: Callable[..., Any]) -> Callable[..., Any]:
        def operation(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return operation

    sending = threading.local()
    attributes_of = sqs_models.Queue.attributes.fget
    send_message = sqs_models.SQSBackend.send_message

    def attributes(queue: Any) -> dict[str, Any]:
        if getattr(sending, "active", False) and not queue.fifo_queue:
            return {}  # what a standard queue has of the FIFO settings a send reads
        return attributes_of(queue)

    def send(backend: Any, *args: Any, **kwargs: Any) -> Any:
        sending.active = True
        try:
            return send_message(backend, *args, **kwargs)
        finally:
            sending.active = False

    patches.enter_context(mock.patch.object(sqs_models.Queue, "attributes", property(attributes)))
    patches.enter_context(mock.patch.object(sqs_models.SQSBackend, "send_message", send))
    patches.enter_context(mock.patch.object(sqs_models.SQSBackend, "delete_message_batch", _delete_message_batch))
    for name in _SQS_MESSAGE_OPERATIONS:
        patches.enter_context(mock.patch.object(sqs_models.SQSBackend, name, atomic(getattr(sqs_models.SQSBackend, name))))
    original_wait = sqs_models.Queue.wait_for_messages

    def wait_for_messages(self: Any, timeout: int) -> None:
        lock.release()  # held once, by the receive that waits
        try:
            original_wait(self, timeout)
        finally:
            lock.acquire()

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return retention + message.sent_timestamp / 1000 > sqs_models.unix_time()

    patches.enter_context(mock.patch.object(sqs_models.Queue, "wait_for_messages", wait_for_messages))
    check = is_message_valid_based_on_retention_period
    patches.enter_context(mock.patch.object(sqs_models.SQSBackend, "is_message_valid_based_on_retention_period", check))
    return patches


def _delete_message_batch(backend: Any, queue_name: str, receipts: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """moto's DeleteMessageBatch in one pass over the queue, with its answers: an already deleted handle succeeds,
    an unknown one is ReceiptHandleIsInvalid."""
    queue = backend.get_queue(queue_name)
    wanted = {receipt["ReceiptHandle"] for receipt in receipts} - queue.deleted_messages
    found: set[str] = set()
    kept = []
    for message in queue._messages:
        handles = wanted.intersection(message.all_receipt_handles) if wanted else ()
        if handles:
            found.update(handles)
            queue.pending_messages.discard(message)
            queue.deleted_messages.update(message.all_receipt_handles)
        else:
            kept.append(message)
    if found:
        queue._messages = kept
    success, errors = [], []
    for receipt in receipts:
        handle = receipt["ReceiptHandle"]
        if handle in found or handle in queue.deleted_messages:
            success.append(receipt["Id"])
        else:
            message = f'The input receipt handle "{handle}" is not a valid receipt handle.'
            errors.append({"Id": receipt["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid", "Message": message})
    return success, errors


# ---- the local stack ------------------------------------------------------------------------------------------------
_DUMMY_ZIP: bytes | None = None


def _dummy_zip() -> bytes:
    global _DUMMY_ZIP
    if _DUMMY_ZIP is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("app.py", "def lambda_handler(event, context):\n    raise RuntimeError('runs in-process locally')\n")
        _DUMMY_ZIP = buffer.getvalue()
    return _DUMMY_ZIP


class LocalAws:
    """moto, started in this process and filled from template.yaml."""

    def __init__(
        self, parameters: Mapping[str, str], secrets: Mapping[str, Mapping[str, str] | str], template_path: Path = TEMPLATE
    ) -> None:
        """`parameters`: template parameter overrides (e.g. base URLs). `secrets`: the value per secret logical id
        (provider credentials as JSON objects, or plain text)."""
        self.template = load_template_checked(template_path)
        self.parameter_overrides = dict(parameters)
        self.secret_values = secrets
        self.parameters: dict[str, str] = {}
        self.physical: dict[str, Physical] = {}
        self.functions: dict[str, LocalFunction] = {}
        self.mappings: list[EventSourceMapping] = []
        self.state_machines: dict[str, str] = {}  # logical id -> ARN
        self.queues: dict[str, str] = {}  # logical id -> URL
        self.buckets: dict[str, str] = {}  # logical id -> name
        self.tables: dict[str, str] = {}  # logical id -> name
        self.buses: dict[str, str] = {}  # logical id -> name
        self.capture_queue_url: str | None = None
        self._mock: Any = None
        self._sqs_patch: Any = None
        self._routing: Any = None
        self._endpoint: Any = None
        self.endpoint_url: str | None = None
        self.secrets_extension: SecretsExtension | None = None
        self.session_tokens: dict[str, str] = {}  # per function, as Lambda gives each its role's: token -> logical id
        self.notes: list[str] = []  # what the local stack could not emulate, for the banner

    # -- lifecycle --
    def start(self) -> LocalAws:
        os.environ.update(FAKE_AWS_ENV)
        os.environ.pop("AWS_PROFILE", None)
        import logging

        from moto import mock_aws

        # The interpreter logs every caught task error with its whole cause (stack traces, ids): the execution's
        # own result is what the API answers with, so keep the console readable.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)

        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        self._sqs_patch = _local_sqs()
        # The functions read their secrets from the Parameters and Secrets extension, as deployed: here it is served
        # from moto, and accepts the session token of each function (the extension acts with the function's role).
        self.secrets_extension = SecretsExtension(token=self._known_session_token).start()
        try:
            self._build()
        except Exception:
            self.stop()
            raise
        return self

    def serve_endpoint(self, port: int) -> str:
        """moto's server on 127.0.0.1:port, sharing this process's state, so `aws --endpoint-url` works from
        another shell (inspect queues, the table, the DLQs). Returns the endpoint URL. Like the local API, it
        answers only requests addressed to loopback (`loopback_only`): moto checks no signature, so a web page
        that rebinds its own name to 127.0.0.1 could otherwise read the secrets."""
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per AWS call otherwise
        self._endpoint = _loopback_moto_server(port)
        self._endpoint.start()
        self.endpoint_url = f"http://127.0.0.1:{port}"
        return self.endpoint_url

    def _known_session_token(self, token: str) -> bool:
        return token in self.session_tokens

    def stop(self) -> None:
        if self.secrets_extension is not None:
            self.secrets_extension.stop()
            self.secrets_extension = None
        if self._endpoint is not None:
            self._endpoint.stop()
            self._endpoint = None
        if self._routing is not None:
            self._routing.__exit__(None, None, None)
            self._routing = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        if self._sqs_patch is not None:
            self._sqs_patch.close()
            self._sqs_patch = None

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=REGION)

    def resource(self, service: str) -> Any:
        import boto3

        return boto3.resource(service, region_name=REGION)

    # -- building --
    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template.get("Resources") or {}

    def resolver(self) -> Resolver:
        return Resolver(self.template, self.parameters, self.physical)

    def _build(self) -> None:
        for name, spec in (self.template.get("Parameters") or {}).items():
            if name in self.parameter_overrides:
                self.parameters[name] = str(self.parameter_overrides[name])
            elif "Default" in spec:
                self.parameters[name] = str(spec["Default"])
            else:
                raise LocalSetupError(f"template parameter {name} has no default; the local run needs one")
        self._create_secrets()  # first: their ARNs are random, and other resources refer to them
        self._assign_physical_ids()
        resolve = self.resolver().resolve
        self._create_queues(resolve)
        # AWS::S3::BucketPolicy is not applied: moto does not evaluate bucket policies, so it would change nothing.
        for logical, resource in self._of_type("AWS::S3::Bucket"):
            self._create_bucket(logical, resolve(resource.get("Properties") or {}))
        for logical, resource in self._of_type("AWS::DynamoDB::Table"):
            self._create_table(logical, resolve(resource.get("Properties") or {}))
        for logical, resource in self._of_type("AWS::Events::EventBus"):
            self._create_bus(logical, resolve(resource.get("Properties") or {}))
        self._create_change_capture()
        self._create_functions(resolve)
        self._create_state_machines(resolve)
        self._create_mappings(resolve)

    def _of_type(self, *types: str) -> list[tuple[str, dict[str, Any]]]:
        """The resources of these types that the stack creates: a resource whose Condition is false does not exist
        (e.g. the webhook's, without WebhookUrl), as in CloudFormation."""
        found = [(logical, resource) for logical, resource in self.resources.items() if resource.get("Type") in types]
        if not any("Condition" in resource for _, resource in found):
            return found
        exists = Resolver(self.template, self.parameters, {}).condition
        return [(logical, resource) for logical, resource in found if "Condition" not in resource or exists(resource["Condition"])]

    def _create_secrets(self) -> None:
        client = self.client("secretsmanager")
        resolve = Resolver(self.template, self.parameters, {}).resolve
        for logical, resource in self._of_type("AWS::SecretsManager::Secret"):
            props = resolve(resource.get("Properties") or {})
            name = props.get("Name") or f"{STACK}-{logical}"
            value = self.secret_values.get(logical)
            if value is None:
                self.notes.append(f"secret {name} ({logical}) has no local value: set it with put-secret-value")
                secret_arn = client.create_secret(Name=name)["ARN"]
            else:
                text = value if isinstance(value, str) else json.dumps(value)  # a plain-text secret (the webhook's) as is
                secret_arn = client.create_secret(Name=name, SecretString=text)["ARN"]
            self.physical[logical] = Physical(secret_arn, {"Id": secret_arn, "Name": name})

    def _assign_physical_ids(self) -> None:
        for logical, resource in self.resources.items():
            if logical in self.physical:
                continue
            kind = resource.get("Type", "")
            props = resource.get("Properties") or {}
            given = Resolver(self.template, self.parameters, {}).resolve
            name = self._given_name(props, given) or f"{STACK}-{logical}"
            match kind:
                case "AWS::SQS::Queue":
                    url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
                    self.physical[logical] = Physical(url, {"Arn": arn("sqs", name), "QueueName": name, "QueueUrl": url})
                case "AWS::S3::Bucket":
                    bucket = self._given_name(props, given) or _derived_bucket_name(logical)
                    self.physical[logical] = Physical(
                        bucket,
                        {
                            "Arn": f"arn:aws:s3:::{bucket}",
                            "DomainName": f"{bucket}.s3.amazonaws.com",
                            "RegionalDomainName": f"{bucket}.s3.{REGION}.amazonaws.com",
                        },
                    )
                case "AWS::DynamoDB::Table":
                    self.physical[logical] = Physical(name, {"Arn": arn("dynamodb", f"table/{name}")})
                case "AWS::Events::EventBus":
                    self.physical[logical] = Physical(name, {"Arn": arn("events", f"event-bus/{name}"), "Name": name})
                case "AWS::Serverless::Function" | "AWS::Lambda::Function":
                    self.physical[logical] = Physical(name, {"Arn": arn("lambda", f"function:{name}")})
                case "AWS::Serverless::StateMachine" | "AWS::StepFunctions::StateMachine":
                    machine_arn = arn("states", f"stateMachine:{name}")
                    self.physical[logical] = Physical(machine_arn, {"Arn": machine_arn, "Name": name})
                case "AWS::IAM::Role":
                    self.physical[logical] = Physical(name, {"Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}", "RoleId": name})
                case "AWS::Logs::LogGroup":
                    self.physical[logical] = Physical(name, {"Arn": arn("logs", f"log-group:{name}:*")})
                case "AWS::SNS::Topic":
                    topic_arn = arn("sns", name)
                    self.physical[logical] = Physical(topic_arn, {"TopicArn": topic_arn, "TopicName": name})
                case "AWS::Serverless::Api":
                    self.physical[logical] = Physical("local", {"RootResourceId": "root"})
                case _:
                    self.physical[logical] = Physical(name, {"Arn": arn("local", name)})
        # SAM's implicit resources that templates may refer to.
        for logical, _ in self._of_type("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            role = f"{logical}Role"
            self.physical.setdefault(role, Physical(f"{STACK}-{role}", {"Arn": f"arn:aws:iam::{ACCOUNT}:role/{STACK}-{role}"}))

    @staticmethod
    def _given_name(props: Mapping[str, Any], resolve: Callable[[Any], Any]) -> str | None:
        for key in ("QueueName", "TableName", "Name", "FunctionName", "RoleName", "LogGroupName", "TopicName", "BucketName"):
            if key in props:
                try:
                    value = resolve(props[key])
                except LocalSetupError:
                    return None  # refers to other resources: the stack-derived name is as good
                return str(value) if isinstance(value, str) else None
        return None

    def _create_queues(self, resolve: Callable[[Any], Any]) -> None:
        client = self.client("sqs")
        pending = dict(self._of_type("AWS::SQS::Queue"))
        # Dead-letter queues first: a redrive policy names an existing queue.
        while pending:
            progressed = False
            for logical, resource in list(pending.items()):
                props = resolve(resource.get("Properties") or {})
                redrive = props.get("RedrivePolicy")
                target = redrive and (json.loads(redrive) if isinstance(redrive, str) else redrive).get("deadLetterTargetArn")
                if target and any(self.physical[other].attrs["Arn"] == target for other in pending if other != logical):
                    continue
                self._create_queue(client, logical, props)
                del pending[logical]
                progressed = True
            if not progressed:
                raise LocalSetupError(f"queues with circular redrive policies: {sorted(pending)}")

    def _create_queue(self, client: Any, logical: str, props: Mapping[str, Any]) -> None:
        name = self.physical[logical].attrs["QueueName"]
        attributes: dict[str, str] = {}
        for key in ("DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout"):
            if key in props:
                attributes[key] = str(props[key])
        if "RedrivePolicy" in props:
            redrive = props["RedrivePolicy"]
            attributes["RedrivePolicy"] = redrive if isinstance(redrive, str) else json.dumps(redrive)
        if props.get("FifoQueue"):
            attributes["FifoQueue"] = "true"
        url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        self.physical[logical].ref = url
        self.physical[logical].attrs["QueueUrl"] = url
        self.queues[logical] = url

    def _create_bucket(self, logical: str, props: Mapping[str, Any]) -> None:
        client = self.client("s3")
        name = self.physical[logical].ref
        if not _BUCKET_NAME.fullmatch(name):
            raise LocalSetupError(f"{logical}: {name!r} is not a valid S3 bucket name (lowercase letters, digits, '.', '-'; 3-63)")
        location = {} if REGION == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": REGION}}
        client.create_bucket(Bucket=name, **location)
        rules = (props.get("LifecycleConfiguration") or {}).get("Rules")
        if rules:
            client.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in rules]})
        block = props.get("PublicAccessBlockConfiguration")
        if block:
            client.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={key: _flag(value) for key, value in block.items()})
        self.buckets[logical] = name

    def _create_table(self, logical: str, props: Mapping[str, Any]) -> None:
        client = self.client("dynamodb")
        name = self.physical[logical].ref
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if args["BillingMode"] == "PROVISIONED":
            args["ProvisionedThroughput"] = props.get("ProvisionedThroughput") or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"):
            if key in props:
                args[key] = props[key]
        client.create_table(**args)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]})
        self.tables[logical] = name

    def _create_bus(self, logical: str, props: Mapping[str, Any]) -> None:
        name = self.physical[logical].ref
        if name != "default":
            self.client("events").create_event_bus(Name=name)
        self.buses[logical] = name

    def _create_change_capture(self) -> None:
        """A rule on every bus (or the default one) sending our change events to a queue the runner prints."""
        sqs = self.client("sqs")
        self.capture_queue_url = sqs.create_queue(QueueName=CAPTURE_QUEUE)["QueueUrl"]
        events = self.client("events")
        for bus in self.buses.values() or ["default"]:
            rule = f"{STACK}-capture"
            events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": [{"prefix": ""}]}))
            events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "capture", "Arn": arn("sqs", CAPTURE_QUEUE)}])

    def _create_functions(self, resolve: Callable[[Any], Any]) -> None:
        globals_ = resolve(((self.template.get("Globals") or {}).get("Function")) or {})
        base_env = (globals_.get("Environment") or {}).get("Variables") or {}
        lambda_client = self.client("lambda")
        iam = self.client("iam")
        role_arn = iam.create_role(RoleName=f"{STACK}-lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        for logical, resource in self._of_type("AWS::Serverless::Function"):
            props = resolve(resource.get("Properties") or {})
            code_uri = props.get("CodeUri")
            if not isinstance(code_uri, str):
                self.notes.append(f"{logical}: CodeUri is not a local folder; not served")
                continue
            name = self.physical[logical].ref
            env = {**base_env, **((props.get("Environment") or {}).get("Variables") or {})}
            env = {key: str(value) for key, value in env.items()}
            env.update(
                AWS_LAMBDA_FUNCTION_NAME=name,
                AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(props.get("MemorySize", globals_.get("MemorySize", 128))),
                AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{name}",
            )
            env.update(self._local_env_overrides())
            if self.secrets_extension is not None:
                token = f"local-session-{logical}"
                self.session_tokens[token] = logical
                env.update(AWS_SESSION_TOKEN=token, PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=str(self.secrets_extension.port))
            timeout = float(props.get("Timeout", globals_.get("Timeout", 3)))
            reserved = props.get("ReservedConcurrentExecutions")
            function = LocalFunction(
                logical_id=logical,
                name=name,
                arn=self.physical[logical].attrs["Arn"],
                code_dir=ROOT / code_uri,
                handler_name=props.get("Handler", globals_.get("Handler", "app.lambda_handler")),
                environment=env,
                timeout=timeout,
                memory=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
                reserved_concurrency=int(reserved) if reserved is not None else None,
            )
            lambda_client.create_function(
                FunctionName=name,
                Runtime=str(props.get("Runtime", globals_.get("Runtime", "python3.13"))),
                Role=role_arn,
                Handler=function.handler_name,
                Code={"ZipFile": _dummy_zip()},
                Timeout=int(timeout),
            )
            self.functions[logical] = function
        self._share_common_environment()

    def _share_common_environment(self) -> None:
        """Variables every function that sets them agrees on also go into the process environment, so threads a
        handler starts (which do not inherit its ContextVar overlay) still see them. Conflicting ones (the
        service name, each function's own queue URL ...) stay per function."""
        values: dict[str, set[str]] = {}
        for function in self.functions.values():
            for key, value in function.environment.items():
                values.setdefault(key, set()).add(value)
        for key, distinct in values.items():
            if len(distinct) == 1:
                os.environ[key] = next(iter(distinct))

    @staticmethod
    def _local_env_overrides() -> dict[str, str]:
        """Local-only settings the developer may change from the shell (LOG_LEVEL), quiet by default."""
        level = os.environ.get("LOG_LEVEL", "WARNING").upper()
        return {
            "LOG_LEVEL": level,
            "POWERTOOLS_LOG_LEVEL": level,
            # EMF metrics go to stdout in Lambda; locally they would drown the banner.
            "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
        }

    def _create_state_machines(self, resolve: Callable[[Any], Any]) -> None:
        sfn = self.client("stepfunctions")
        for logical, resource in self._of_type("AWS::Serverless::StateMachine"):
            props = resource.get("Properties") or {}
            if "DefinitionUri" in props and isinstance(props["DefinitionUri"], str):
                definition_text = (ROOT / props["DefinitionUri"]).read_text(encoding="utf-8")
            elif "Definition" in props:
                definition_text = json.dumps(props["Definition"])
            else:
                self.notes.append(f"{logical}: no local DefinitionUri/Definition; not served")
                continue
            try:
                definition_text = substitute(definition_text, resolve(props.get("DefinitionSubstitutions") or {}))
            except LocalSetupError as exc:
                raise LocalSetupError(f"{logical}: {exc}") from None
            name = self.physical[logical].attrs["Name"]
            role = f"arn:aws:iam::{ACCOUNT}:role/{STACK}-{logical}Role"
            machine_arn = sfn.create_state_machine(name=name, definition=definition_text, roleArn=role, type=props.get("Type", "STANDARD"))[
                "stateMachineArn"
            ]
            self.physical[logical].ref = machine_arn
            self.physical[logical].attrs["Arn"] = machine_arn
            self.state_machines[logical] = machine_arn
        if self.state_machines:
            self._route_lambda_to_functions()

    def _route_lambda_to_functions(self) -> None:
        """moto's interpreter invokes Lambda tasks through its Lambda backend: send them to the real handlers."""
        from local.lambda_routing import route_lambda_invocations  # imports moto: only once the fake AWS env is set

        routes: dict[str, Callable[..., Any]] = {}
        for function in self.functions.values():
            routes[function.name] = routes[function.arn] = function.handle
        self._routing = route_lambda_invocations(routes)
        self._routing.__enter__()

    def _create_mappings(self, resolve: Callable[[Any], Any]) -> None:
        by_arn = {function.arn: function for function in self.functions.values()}
        by_name = {function.name: function for function in self.functions.values()}
        queue_by_arn = {self.physical[logical].attrs["Arn"]: url for logical, url in self.queues.items()}

        def add(function: LocalFunction | None, queue_arn: str, props: Mapping[str, Any], event: str = "") -> None:
            if function is None or queue_arn not in queue_by_arn:
                self.notes.append(f"an SQS event source ({queue_arn}) has no local function or queue; not polled")
                return
            self.mappings.append(
                EventSourceMapping(
                    function=function,
                    queue_url=queue_by_arn[queue_arn],
                    queue_arn=queue_arn,
                    event=event,
                    report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                    enabled=_flag(props.get("Enabled", True)),
                    **_event_source_settings(f"{function.logical_id} {event or 'event source'}", props),
                )
            )

        for logical, resource in self._of_type("AWS::Serverless::Function"):
            for name, event in ((resource.get("Properties") or {}).get("Events") or {}).items():
                if event.get("Type") == "SQS":
                    props = resolve(event.get("Properties") or {})
                    add(self.functions.get(logical), props["Queue"], props, name)
        for _, resource in self._of_type("AWS::Lambda::EventSourceMapping"):
            props = resolve(resource.get("Properties") or {})
            target = str(props.get("FunctionName", ""))
            add(by_arn.get(target) or by_name.get(target), str(props.get("EventSourceArn", "")), props)

    # -- helpers for the runner --
    def queue_for(self, provider: str) -> EventSourceMapping | None:
        """The senders' tracking queue of a provider (e.g. "wooxy"), not its re-check queue: the queue consumed by
        functions/<provider>_tracking/ (or by functions/<provider>/ itself, in a template where it consumes them)."""
        consumed = [m for m in self.mappings if m.function.short_name in (f"{provider}_tracking", provider)]
        return next((m for m in consumed if m.event == "TrackingQueue"), consumed[0] if consumed else None)

    def api_target(self, integration: Mapping[str, Any]) -> str | None:
        """The logical id of the local function an aws_proxy x-amazon-apigateway-integration points at."""
        if integration.get("type") == "aws_proxy":
            match = re.search(r"\$\{(\w+)\.Arn\}", json.dumps(integration))
            if match and match.group(1) in self.functions:
                return match.group(1)
        return None


# ---- moto's endpoint: loopback only --------------------------------------------------------------------------------
# What a request to the endpoint may name as its Host: 127.0.0.1, localhost or [::1], with or without a port, and
# names under localhost (S3's virtual-hosted style: <bucket>.localhost:8084). A DNS-rebinding page sends its own
# name (attacker.example); browsers send a name under localhost only for a page served from loopback itself.
LOOPBACK_HOST = re.compile(r"(127\.0\.0\.1|(?:[a-z0-9.-]+\.)?localhost|\[::1\])(:\d{1,5})?", re.IGNORECASE)


def loopback_only(app: Callable[..., Any]) -> Callable[..., Any]:
    """WSGI middleware: 403 for a request whose Host is not loopback (a missing Host, i.e. HTTP/1.0, passes)."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        host = environ.get("HTTP_HOST")
        if host is not None and not LOOPBACK_HOST.fullmatch(host.strip()):
            body = b"the local AWS endpoint answers only Host 127.0.0.1, localhost or [::1]\n"
            start_response("403 Forbidden", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return guarded


def _loopback_moto_server(port: int) -> Any:
    """moto's ThreadedMotoServer on 127.0.0.1:port, its WSGI app behind `loopback_only`."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    class LoopbackMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = loopback_only(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return LoopbackMotoServer(ip_address="127.0.0.1", port=port, verbose=False)


# ---- S3: CloudFormation's bucket properties in the shape of the S3 API ---------------------------------------------
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _derived_bucket_name(logical: str) -> str:
    """What stands in for CloudFormation's generated name: S3 wants lowercase letters, digits and '-', 3-63."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{STACK}-{logical}".lower())[:63].strip("-")


def _flag(value: Any) -> bool:
    """A template boolean, which may arrive as "true"/"false" text (e.g. from a parameter)."""
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """One AWS::S3::Bucket lifecycle Rule as PutBucketLifecycleConfiguration takes it (different names and nesting)."""
    out: dict[str, Any] = {"Status": rule["Status"], "Filter": _lifecycle_filter(rule)}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    expiration: dict[str, Any] = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if "ExpirationDate" in rule:
        expiration["Date"] = rule["ExpirationDate"]
    if "ExpiredObjectDeleteMarker" in rule:
        expiration["ExpiredObjectDeleteMarker"] = _flag(rule["ExpiredObjectDeleteMarker"])
    if expiration:
        out["Expiration"] = expiration
    transitions = [*(rule.get("Transitions") or []), *([rule["Transition"]] if "Transition" in rule else [])]
    if transitions:
        out["Transitions"] = [
            {
                "StorageClass": t["StorageClass"],
                **({"Days": int(t["TransitionInDays"])} if "TransitionInDays" in t else {"Date": t["TransitionDate"]}),
            }
            for t in transitions
        ]
    noncurrent = dict(rule.get("NoncurrentVersionExpiration") or {})
    if "NoncurrentVersionExpirationInDays" in rule:
        noncurrent.setdefault("NoncurrentDays", rule["NoncurrentVersionExpirationInDays"])
    if noncurrent:
        out["NoncurrentVersionExpiration"] = {key: int(value) for key, value in noncurrent.items()}
    noncurrent_transitions = [
        *(rule.get("NoncurrentVersionTransitions") or []),
        *([rule["NoncurrentVersionTransition"]] if "NoncurrentVersionTransition" in rule else []),
    ]
    if noncurrent_transitions:
        out["NoncurrentVersionTransitions"] = [
            {
                "StorageClass": t["StorageClass"],
                "NoncurrentDays": int(t["TransitionInDays"]),
                **({"NewerNoncurrentVersions": int(t["NewerNoncurrentVersions"])} if "NewerNoncurrentVersions" in t else {}),
            }
            for t in noncurrent_transitions
        ]
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
    return out


def _lifecycle_filter(rule: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation puts Prefix, TagFilters and the size bounds on the rule; S3 wants one Filter ("And" for several)."""
    tags = [{"Key": tag["Key"], "Value": tag["Value"]} for tag in rule.get("TagFilters") or []]
    parts: dict[str, Any] = {}
    if "Prefix" in rule:
        parts["Prefix"] = rule["Prefix"]
    for key in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        if key in rule:
            parts[key] = int(rule[key])
    if len(tags) > 1 or (tags and parts):
        return {"And": {**parts, "Tags": tags}}
    if tags:
        return {"Tag": tags[0]}
    if len(parts) > 1:
        return {"And": parts}
    return parts or {"Prefix": ""}

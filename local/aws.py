"""The AWS side of the local run: moto in-process, built from template.yaml so it matches the deployed stack.

`LocalAws.start()` reads the template, gives every resource a local physical id (names, URLs, ARNs), resolves
the intrinsic functions the template uses (Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::If) with
parameters set to local values, and creates in moto: the secrets (seeded with provider credentials), the SQS
queues with their redrive policies, the DynamoDB tables, the event buses (plus a rule to a capture queue so the
tour can show change events), the functions (in moto's Lambda so ARNs exist) and the state machines
(DefinitionUri + DefinitionSubstitutions). The functions themselves run in this process: `LocalFunction`
loads functions/<name>/app.py under a unique module name and calls its handler with that function's
environment (see `FunctionEnviron`).
"""

from __future__ import annotations

import contextvars
import io
import json
import os
import re
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
OPENAPI = ROOT / "api" / "openapi.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
STACK = "sms-status-local"
CAPTURE_QUEUE = f"{STACK}-change-events"  # EventBridge rule target: what the tour shows as change events

# Never a real account: moto answers every call made with these.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


class LocalSetupError(RuntimeError):
    """The template or the local settings cannot be turned into a local stack; the message says why."""


# ---- template reading ----------------------------------------------------------------------------------------
class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, !GetAtt ...) as their long forms."""


def _cfn_constructor(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _cfn_constructor)


def load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass
class Physical:
    """What Ref and Fn::GetAtt give for one resource in the local stack."""

    ref: str
    attrs: dict[str, str] = field(default_factory=dict)


def _arn(service: str, resource: str, region: str = REGION) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


class Resolver:
    """Resolves the intrinsic functions of template values against local parameters and physical ids."""

    PSEUDO = {
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::StackName": STACK,
        "AWS::StackId": _arn("cloudformation", f"stack/{STACK}/00000000-0000-0000-0000-000000000000"),
        "AWS::URLSuffix": "amazonaws.com",
    }
    _NO_VALUE = object()

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, str], physical: Mapping[str, Physical]) -> None:
        self.template = template
        self.parameters = parameters
        self.physical = physical

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not self._NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), *_ = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(logical, self.resolve(attr))
            if key == "Fn::Sub":
                return self.sub(arg)
            if key == "Fn::Join":
                sep, items = arg
                return str(self.resolve(sep)).join(str(item) for item in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::If":
                condition, when_true, when_false = arg
                return self.resolve(when_true if self.condition(condition) else when_false)
            if key == "Fn::ToJsonString":
                return json.dumps(self.resolve(arg))
            if key.startswith("Fn::"):
                raise LocalSetupError(f"the local run does not support {key} (used in template.yaml)")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not self._NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return self._NO_VALUE
        if name in self.PSEUDO:
            return self.PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name].ref
        raise LocalSetupError(f"template.yaml refers to {name!r}, which is neither a parameter nor a resource")

    def get_att(self, logical: str, attr: str) -> str:
        resource = self.physical.get(logical)
        if resource is None:
            raise LocalSetupError(f"template.yaml uses Fn::GetAtt on unknown resource {logical!r}")
        if attr not in resource.attrs:
            # An attribute nothing local reads (e.g. a stream ARN): a stable placeholder keeps the value readable.
            return f"{resource.ref}#{attr}"
        return resource.attrs[attr]

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self.physical:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def condition(self, name: str) -> bool:
        spec = (self.template.get("Conditions") or {}).get(name)
        if spec is None:
            raise LocalSetupError(f"template.yaml uses unknown condition {name!r}")
        return bool(self._evaluate(spec))

    def _evaluate(self, spec: Any) -> Any:
        if isinstance(spec, dict) and len(spec) == 1:
            (key, arg), *_ = spec.items()
            match key:
                case "Fn::Equals":
                    left, right = (self._evaluate(item) for item in arg)
                    return str(left) == str(right)
                case "Fn::Not":
                    return not self._evaluate(arg[0])
                case "Fn::And":
                    return all(self._evaluate(item) for item in arg)
                case "Fn::Or":
                    return any(self._evaluate(item) for item in arg)
                case "Condition":
                    return self.condition(arg)
        return self.resolve(spec)


# ---- functions: the real handlers, each with its own environment ------------------------------------------------
_function_env: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("local_function_env", default=None)


class FunctionEnviron(MutableMapping[str, str]):
    """os.environ as each function sees it. All functions share this process, but their Environment blocks
    differ (e.g. each has its own POWERTOOLS_SERVICE_NAME or queue URL under the same variable name). While a
    handler runs, its variables are layered over the process environment for that thread (a ContextVar), so
    code that reads os.environ / os.getenv sees what it would see in its own Lambda container."""

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self.base = base

    def __getitem__(self, key: str) -> str:
        overlay = _function_env.get()
        if overlay is not None and key in overlay:
            return overlay[key]
        return self.base[key]

    def __setitem__(self, key: str, value: str) -> None:
        self.base[key] = value

    def __delitem__(self, key: str) -> None:
        del self.base[key]

    def __iter__(self) -> Iterator[str]:
        overlay = _function_env.get() or {}
        yield from overlay
        yield from (key for key in self.base if key not in overlay)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        return dict(self)


def install_function_environ() -> None:
    if not isinstance(os.environ, FunctionEnviron):
        os.environ = FunctionEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003 - layered on purpose, nothing cleared


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools and the handlers read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    function_version: str = "$LATEST"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionThrottled(RuntimeError):
    """No free concurrency slot in time (Lambda would answer TooManyRequestsException)."""


@dataclass
class LocalFunction:
    """One AWS::Serverless::Function of the template, running in this process."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler_name: str  # "app.lambda_handler"
    environment: dict[str, str]
    timeout: float
    memory: int
    reserved_concurrency: int | None = None
    _module: ModuleType | None = field(default=None, repr=False)
    _slots: threading.BoundedSemaphore | None = field(default=None, repr=False)

    @property
    def short_name(self) -> str:
        """The folder under functions/: openmarket, wooxy, wwt, tracked ..."""
        return self.code_dir.name

    def load(self) -> None:
        module_file, attr = self.handler_name.rsplit(".", 1)
        module_name = f"local_function_{self.logical_id}"  # unique: every function's module is called app.py
        from local.lambda_routing import load_module

        token = _function_env.set(self.environment)
        try:
            module = load_module(self.code_dir / f"{module_file}.py", module_name)  # import-time code sees its own env too
        except ImportError as exc:
            raise LocalSetupError(f"cannot load {self.code_dir / module_file}.py for {self.logical_id}") from exc
        finally:
            _function_env.reset(token)
        if not callable(getattr(module, attr, None)):
            raise LocalSetupError(f"{self.logical_id}: {self.handler_name} is not a function")
        self._module = module
        if self.reserved_concurrency is not None:
            self._slots = threading.BoundedSemaphore(max(1, self.reserved_concurrency))

    def invoke(self, event: Any) -> Any:
        """Run the handler like Lambda does: its environment, a fresh context, at most `reserved_concurrency` at once.
        Local simplification: a busy function makes the caller wait (up to its timeout) instead of throttling."""
        if self._module is None:
            self.load()
        handler: Callable[[Any, Any], Any] = getattr(self._module, self.handler_name.rsplit(".", 1)[1])
        if self._slots is not None and not self._slots.acquire(timeout=self.timeout):
            raise FunctionThrottled(f"{self.name}: all {self.reserved_concurrency} reserved executions busy")
        token = _function_env.set(self.environment)
        try:
            context = LambdaContext(self.name, self.arn, self.memory, self.timeout)
            # A JSON round trip, as Lambda gives: the handler cannot share objects with its caller.
            return json.loads(json.dumps(handler(json.loads(json.dumps(event)), context)))
        finally:
            _function_env.reset(token)
            if self._slots is not None:
                self._slots.release()


@dataclass(frozen=True)
class EventSourceMapping:
    """Lambda's SQS poller configuration for one queue -> function pair."""

    function: LocalFunction
    queue_url: str
    queue_arn: str
    batch_size: int = 10
    report_batch_item_failures: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class ApiTarget:
    """What an aws_proxy integration URI or a Step Functions integration points at."""

    kind: str  # "lambda" | "states"
    logical_id: str


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

    def __init__(self, parameters: Mapping[str, str], secrets: Mapping[str, Mapping[str, str]], template_path: Path = TEMPLATE) -> None:
        """`parameters`: template parameter overrides (e.g. base URLs). `secrets`: credentials per secret logical id."""
        self.template = load_template_checked(template_path)
        self.parameter_overrides = dict(parameters)
        self.secret_values = secrets
        self.parameters: dict[str, str] = {}
        self.physical: dict[str, Physical] = {}
        self.functions: dict[str, LocalFunction] = {}
        self.mappings: list[EventSourceMapping] = []
        self.state_machines: dict[str, str] = {}  # logical id -> ARN
        self.queues: dict[str, str] = {}  # logical id -> URL
        self.tables: dict[str, str] = {}  # logical id -> name
        self.buses: dict[str, str] = {}  # logical id -> name
        self.capture_queue_url: str | None = None
        self._mock: Any = None
        self._routing: Any = None
        self._endpoint: Any = None
        self.endpoint_url: str | None = None
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
        try:
            self._build()
        except Exception:
            self.stop()
            raise
        return self

    def serve_endpoint(self, port: int) -> str:
        """moto's server on 127.0.0.1:port, sharing this process's state, so `aws --endpoint-url` works from
        another shell (inspect queues, the table, the DLQs). Returns the endpoint URL."""
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per AWS call otherwise
        self._endpoint = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._endpoint.start()
        self.endpoint_url = f"http://127.0.0.1:{port}"
        return self.endpoint_url

    def stop(self) -> None:
        if self._endpoint is not None:
            self._endpoint.stop()
            self._endpoint = None
        if self._routing is not None:
            self._routing.__exit__(None, None, None)
            self._routing = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=REGION)

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
        for logical, resource in self._of_type("AWS::DynamoDB::Table"):
            self._create_table(logical, resolve(resource.get("Properties") or {}))
        for logical, resource in self._of_type("AWS::Events::EventBus"):
            self._create_bus(logical, resolve(resource.get("Properties") or {}))
        self._create_change_capture()
        self._create_functions(resolve)
        self._create_state_machines(resolve)
        self._create_mappings(resolve)

    def _of_type(self, *types: str) -> list[tuple[str, dict[str, Any]]]:
        return [(logical, resource) for logical, resource in self.resources.items() if resource.get("Type") in types]

    def _create_secrets(self) -> None:
        client = self.client("secretsmanager")
        resolve = Resolver(self.template, self.parameters, {}).resolve
        for logical, resource in self._of_type("AWS::SecretsManager::Secret"):
            props = resolve(resource.get("Properties") or {})
            name = props.get("Name") or f"{STACK}-{logical}"
            value = self.secret_values.get(logical)
            if value is None:
                self.notes.append(f"secret {name} ({logical}) has no local value: set it with put-secret-value")
                arn = client.create_secret(Name=name)["ARN"]
            else:
                arn = client.create_secret(Name=name, SecretString=json.dumps(value))["ARN"]
            self.physical[logical] = Physical(arn, {"Id": arn, "Name": name})

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
                    self.physical[logical] = Physical(url, {"Arn": _arn("sqs", name), "QueueName": name, "QueueUrl": url})
                case "AWS::DynamoDB::Table":
                    self.physical[logical] = Physical(name, {"Arn": _arn("dynamodb", f"table/{name}")})
                case "AWS::Events::EventBus":
                    self.physical[logical] = Physical(name, {"Arn": _arn("events", f"event-bus/{name}"), "Name": name})
                case "AWS::Serverless::Function" | "AWS::Lambda::Function":
                    self.physical[logical] = Physical(name, {"Arn": _arn("lambda", f"function:{name}")})
                case "AWS::Serverless::StateMachine" | "AWS::StepFunctions::StateMachine":
                    arn = _arn("states", f"stateMachine:{name}")
                    self.physical[logical] = Physical(arn, {"Arn": arn, "Name": name})
                case "AWS::IAM::Role":
                    self.physical[logical] = Physical(name, {"Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}", "RoleId": name})
                case "AWS::Logs::LogGroup":
                    self.physical[logical] = Physical(name, {"Arn": _arn("logs", f"log-group:{name}:*")})
                case "AWS::SNS::Topic":
                    arn = _arn("sns", name)
                    self.physical[logical] = Physical(arn, {"TopicArn": arn, "TopicName": name})
                case "AWS::Serverless::Api":
                    self.physical[logical] = Physical("local", {"RootResourceId": "root"})
                case _:
                    self.physical[logical] = Physical(name, {"Arn": _arn("local", name)})
        # SAM's implicit resources that templates may refer to.
        for logical, _ in self._of_type("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            role = f"{logical}Role"
            self.physical.setdefault(role, Physical(f"{STACK}-{role}", {"Arn": f"arn:aws:iam::{ACCOUNT}:role/{STACK}-{role}"}))

    @staticmethod
    def _given_name(props: Mapping[str, Any], resolve: Callable[[Any], Any]) -> str | None:
        for key in ("QueueName", "TableName", "Name", "FunctionName", "RoleName", "LogGroupName", "TopicName"):
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
            events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "capture", "Arn": _arn("sqs", CAPTURE_QUEUE)}])

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
            substitutions = resolve(props.get("DefinitionSubstitutions") or {})
            for key, value in substitutions.items():
                definition_text = definition_text.replace("${" + key + "}", str(value))
            name = self.physical[logical].attrs["Name"]
            role = f"arn:aws:iam::{ACCOUNT}:role/{STACK}-{logical}Role"
            arn = sfn.create_state_machine(name=name, definition=definition_text, roleArn=role, type=props.get("Type", "STANDARD"))[
                "stateMachineArn"
            ]
            self.physical[logical].ref = arn
            self.physical[logical].attrs["Arn"] = arn
            self.state_machines[logical] = arn
        if self.state_machines:
            self._route_lambda_to_functions()

    def _route_lambda_to_functions(self) -> None:
        """moto's interpreter invokes Lambda tasks through its Lambda backend: send them to the real handlers."""
        from local.lambda_routing import route_lambda_invocations  # imports moto: only once the fake AWS env is set

        routes: dict[str, Callable[..., Any]] = {}
        for function in self.functions.values():
            routes[function.name] = routes[function.arn] = _as_handler(function)
        self._routing = route_lambda_invocations(routes)
        self._routing.__enter__()

    def _create_mappings(self, resolve: Callable[[Any], Any]) -> None:
        by_arn = {function.arn: function for function in self.functions.values()}
        by_name = {function.name: function for function in self.functions.values()}
        queue_by_arn = {self.physical[logical].attrs["Arn"]: url for logical, url in self.queues.items()}

        def add(function: LocalFunction | None, queue_arn: str, props: Mapping[str, Any]) -> None:
            if function is None or queue_arn not in queue_by_arn:
                self.notes.append(f"an SQS event source ({queue_arn}) has no local function or queue; not polled")
                return
            self.mappings.append(
                EventSourceMapping(
                    function=function,
                    queue_url=queue_by_arn[queue_arn],
                    queue_arn=queue_arn,
                    batch_size=int(props.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                    enabled=bool(props.get("Enabled", True)),
                )
            )

        for logical, resource in self._of_type("AWS::Serverless::Function"):
            for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
                if event.get("Type") == "SQS":
                    props = resolve(event.get("Properties") or {})
                    add(self.functions.get(logical), props["Queue"], props)
        for _, resource in self._of_type("AWS::Lambda::EventSourceMapping"):
            props = resolve(resource.get("Properties") or {})
            target = str(props.get("FunctionName", ""))
            add(by_arn.get(target) or by_name.get(target), str(props.get("EventSourceArn", "")), props)

    # -- helpers for the runner --
    def queue_for(self, short_name: str) -> EventSourceMapping | None:
        """The tracking queue whose consumer is functions/<short_name>/ (e.g. "wooxy")."""
        return next((m for m in self.mappings if m.function.short_name == short_name), None)

    def api_target(self, integration: Mapping[str, Any]) -> ApiTarget | None:
        """Which local function or state machine an x-amazon-apigateway-integration points at."""
        text = json.dumps(integration)
        if integration.get("type") == "aws_proxy":
            match = re.search(r"\$\{(\w+)\.Arn\}", text)
            if match and match.group(1) in self.functions:
                return ApiTarget("lambda", match.group(1))
        elif integration.get("type") == "aws":
            for logical in self.state_machines:
                if re.search(r"\$\{" + re.escape(logical) + r"(\.Arn)?\}", text) or f'"Ref": "{logical}"' in text:
                    return ApiTarget("states", logical)
        return None


def _as_handler(function: LocalFunction) -> Callable[[Any, Any], Any]:
    """(event, context) as lambda_routing calls it; the function makes its own context."""
    return lambda event, _context: function.invoke(event)


def load_template_checked(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise LocalSetupError(f"{path} is missing")
    template = load_yaml(path)
    if not isinstance(template, dict) or "Resources" not in template:
        raise LocalSetupError(f"{path} has no Resources")
    return template

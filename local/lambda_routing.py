"""Run Lambda invocations made inside moto (e.g. by the Step Functions interpreter) with real handlers, in-process.

moto's Lambda backend would otherwise need Docker to run a function. `route_lambda_invocations` patches
`LambdaBackend.invoke` so that a function named in `routes` (by name or ARN) is answered by calling its
Python handler; every other function keeps moto's behaviour. Used by the tests and by the local run.

A handler that raises is reported the way the Lambda runtime reports an unhandled error: the
`X-Amz-Function-Error: Unhandled` header and a `{"errorType": <exception class name>, "errorMessage": ...}`
payload, so Step Functions sees the class name as the error name (what Retry/Catch match on).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

from moto.awslambda.models import LambdaBackend

Handler = Callable[[Any, Any], Any]


@dataclass
class LocalContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str = "local"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local"
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


def _function_keys(backend: LambdaBackend, function_name: str, qualifier: str | None) -> tuple[str, str]:
    """(name, ARN) of the function being invoked; the caller may have used either."""
    function = backend.get_function(function_name, qualifier)
    return function.function_name, function.function_arn


def _error_payload(error: BaseException) -> bytes:
    body = {
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_tb(error.__traceback__),
    }
    return json.dumps(body).encode()


@contextmanager
def route_lambda_invocations(routes: Mapping[str, Handler]) -> Iterator[None]:
    """While active, invoking a function whose name or ARN is a key of `routes` calls that handler."""
    original = LambdaBackend.invoke

    def invoke(self: LambdaBackend, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any):
        name, arn = _function_keys(self, function_name, qualifier)
        handler = routes.get(name) or routes.get(arn) or routes.get(function_name)
        if handler is None:
            return original(self, function_name, qualifier, body, headers, response_headers)
        event = json.loads(body) if body else {}
        try:
            payload = json.dumps(handler(event, LocalContext(name, arn))).encode()
        except Exception as error:  # the Lambda runtime's contract: the error goes back to the caller, typed
            response_headers["x-amz-function-error"] = "Unhandled"
            payload = _error_payload(error)
        response_headers["Content-Length"] = str(len(payload))
        return payload

    with mock.patch.object(LambdaBackend, "invoke", invoke):
        yield


# ---- helpers shared by the tests, the bench and the local run -------------------------------------
def load_module(app_path: Path, module_name: str) -> ModuleType:
    """A function's code file imported under `module_name` (every function's module is called app.py)."""
    spec = importlib.util.spec_from_file_location(module_name, app_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {app_path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_handler(app_path: Path, module_name: str) -> Handler:
    """`lambda_handler` of a function's app.py, imported under `module_name`."""
    return load_module(app_path, module_name).lambda_handler


def substitute(definition: str, substitutions: Mapping[str, str]) -> str:
    """What CloudFormation does with DefinitionSubstitutions: `${Name}` -> value; an unknown name is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in substitutions:
            raise KeyError(f"no substitution for ${{{name}}}")
        return substitutions[name]

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", value, definition)


def wait_for_execution(sfn: Any, execution_arn: str, timeout: float, poll: float = 0.01) -> dict[str, Any]:
    """describe_execution until the execution leaves RUNNING (moto has no StartSyncExecution); TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        # moto marks an execution SUCCEEDED a moment before it stores the output: wait for both.
        if described["status"] != "RUNNING" and (described["status"] != "SUCCEEDED" or described.get("output") not in (None, "null")):
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution still RUNNING after {timeout} s")
        time.sleep(poll)


@contextmanager
def lift_payload_quota() -> Iterator[None]:
    """Turn off moto's 256 KiB state-payload check (AWS's real limit) while active.

    Only for measuring chunking, concurrency and order at sizes whose merged answer exceeds that limit
    (2,500+ Wooxy reports): on AWS such executions fail with States.DataLimitExceeded (docs/bulk.md).
    """
    targets = (
        "moto.stepfunctions.parser.asl.component.state.state.is_within_size_quota",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda.is_within_size_quota",
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service.is_within_size_quota",
    )
    patches = [mock.patch(target, return_value=True) for target in targets]
    for patch in patches:
        patch.start()
    try:
        yield
    finally:
        for patch in reversed(patches):
            patch.stop()

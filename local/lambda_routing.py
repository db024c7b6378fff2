"""Lambda invocations made inside moto (e.g. by the Step Functions interpreter), answered by real handlers in-process.

moto's Lambda backend would otherwise need Docker to run a function. `route_lambda_invocations` patches
`LambdaBackend.invoke` so that a function named in `routes` (by name or ARN) is answered by calling its
Python handler; every other function keeps moto's behaviour. Used by the tests, the bench and the local run.
This is the moto side of the local Lambda runtime (`local.lambda_runtime`), kept apart because it imports moto,
which must happen only once the fake AWS environment is set.

A handler that raises is reported the way the Lambda runtime reports an unhandled error: the
`X-Amz-Function-Error: Unhandled` header and a `{"errorType": <exception class name>, "errorMessage": ...}`
payload, so Step Functions sees the class name as the error name (what Retry/Catch match on).

A handler refused for its reserved concurrency (`FunctionThrottled`) did not run: that is Lambda's own 429
TooManyRequestsException (Reason ReservedFunctionConcurrentInvocationLimitExceeded), an error of the Invoke API
itself, not of the function. moto answers it as such, so the caller's boto3 client raises a ClientError, and
Step Functions names the task's error `Lambda.TooManyRequestsException`, which a Retry can match as on AWS.
(The interpreter's clients make one attempt only: botocore's own retries do not hide a throttle.)
"""

from __future__ import annotations

import importlib
import json
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from moto.awslambda.models import LambdaBackend
from moto.core.base_backend import BackendDict
from moto.core.exceptions import JsonRESTError
from moto.core.models import botocore_stubber
from moto.settings import moto_server_port
from moto.stepfunctions.parser.asl.utils import boto_client

from local.lambda_runtime import THROTTLE_REASON, FunctionThrottled, Handler, LambdaContext

_SFN_PARSER = "moto.stepfunctions.parser."
# The interpreter's modules that call boto_client_for (imported by name): Lambda tasks, S3 ItemReader and
# ResultWriter, and every service integration (the factory imports them all).
_BOTO_CLIENT_USERS = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_factory",
)


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


class TooManyRequestsException(JsonRESTError):
    """Lambda's answer to an invocation over the function's reserved concurrency: HTTP 429, with its Reason and Type
    (moto sends the error type in X-Amzn-ErrorType, which botocore reads as the error code)."""

    code = 429

    def __init__(self, message: str) -> None:
        super().__init__("TooManyRequestsException", message)
        self.description = json.dumps({"__type": "TooManyRequestsException", "message": message, "Reason": THROTTLE_REASON, "Type": "User"})


def _memoized(original: Callable[..., Any]) -> Callable[..., Any]:
    """boto_client_for, one client per (region, service, endpoint): building a boto3 client costs milliseconds
    of CPU, and the interpreter builds one per Lambda task and per S3 read or write. boto3 clients are
    thread-safe. The original ignores `state_credentials` (it always signs with fixed fake keys) and only
    picks the endpoint from whether moto intercepts in-process, so nothing else needs to be in the key."""
    clients: dict[tuple[str, str, int | None], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, None if botocore_stubber.enabled else moto_server_port())
        client = clients.get(key)
        if client is None:
            with lock:  # boto3's default session is not thread-safe to build clients from
                client = clients.get(key)
                if client is None:
                    client = clients[key] = original(region=region, service=service, state_credentials=state_credentials)
        return client

    return boto_client_for


@contextmanager
def _shared_boto_clients() -> Iterator[None]:
    """While active, the Step Functions interpreter reuses its boto3 clients instead of building one per call."""
    for name in _BOTO_CLIENT_USERS:
        importlib.import_module(name)
    original = boto_client.boto_client_for
    memoized = _memoized(original)
    users = [
        module
        for name, module in list(sys.modules.items())
        if name.startswith(_SFN_PARSER) and getattr(module, "boto_client_for", None) is original and module is not boto_client
    ]
    with ExitStack() as patches:
        for module in users:
            patches.enter_context(mock.patch.object(module, "boto_client_for", memoized))
        yield


@contextmanager
def _direct_backend_lookup() -> Iterator[None]:
    """While active, an existing account's backend is read directly. moto looks its backend up on every request
    through BackendDict.__getitem__, which takes a process-wide lock and scans the list of every service's
    BackendDict each time: with ten Lambda tasks, the interpreter and the handlers' own calls all in one process,
    that lock was a measurable share of a bulk job. A first lookup still goes through moto (it creates the backend)."""
    original = BackendDict.__getitem__

    def getitem(self: BackendDict, account_id: str) -> Any:
        try:
            return dict.__getitem__(self, account_id)
        except KeyError:
            return original(self, account_id)

    with mock.patch.object(BackendDict, "__getitem__", getitem):
        yield


@contextmanager
def _atomic_dynamodb() -> Iterator[None]:
    """While active, moto answers one DynamoDB request at a time. DynamoDB applies each request atomically; moto
    changes an item's attributes in place, so a read running beside an update can fail ("dictionary keys changed
    during iteration"), which a bulk job's status polls beside its chunks' counter updates did."""
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action
    lock = threading.RLock()

    def call_action(self: DynamoHandler) -> Any:
        with lock:
            return original(self)

    with mock.patch.object(DynamoHandler, "call_action", call_action):
        yield


@contextmanager
def route_lambda_invocations(routes: Mapping[str, Handler]) -> Iterator[None]:
    """While active, invoking a function whose name or ARN is a key of `routes` calls that handler (and the
    Step Functions interpreter shares its boto3 clients, see `_memoized`, backends are read directly, and DynamoDB
    requests are atomic as on AWS)."""
    original = LambdaBackend.invoke

    def invoke(self: LambdaBackend, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any):
        name, arn = _function_keys(self, function_name, qualifier)
        handler = routes.get(name) or routes.get(arn) or routes.get(function_name)
        if handler is None:
            return original(self, function_name, qualifier, body, headers, response_headers)
        event = json.loads(body) if body else {}
        try:
            payload = json.dumps(handler(event, LambdaContext(name, arn))).encode()
        except FunctionThrottled as throttled:  # the Invoke API refuses: no function error, a 429 to the caller
            raise TooManyRequestsException(str(throttled)) from None
        except Exception as error:  # the Lambda runtime's contract: the error goes back to the caller, typed
            response_headers["x-amz-function-error"] = "Unhandled"
            payload = _error_payload(error)
        response_headers["Content-Length"] = str(len(payload))
        return payload

    with mock.patch.object(LambdaBackend, "invoke", invoke), _shared_boto_clients(), _direct_backend_lookup(), _atomic_dynamodb():
        yield


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

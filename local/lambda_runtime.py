"""The Lambda runtime, in-process: the context object, loading a function's code, and calling its handler.

The local run, the tests and the bench all call the real functions/<name>/app.py handlers in this process
instead of in a container; this module is the one place that imports a function's module and the one Lambda
context object they all pass. No moto here: calls made inside moto reach these handlers through
`local.lambda_routing`.

Reserved concurrency is enforced as Lambda enforces it: an invocation that finds every reserved execution busy
is refused at once (`FunctionThrottled`, Lambda's 429 TooManyRequestsException with Reason
ReservedFunctionConcurrentInvocationLimitExceeded), never queued. Each function counts its invocations and
throttles (`LocalFunction.stats()`): what Lambda's Invocations and Throttles metrics would show. What a throttle
becomes is the caller's business, as on AWS: API Gateway answers 500 (`local.api_server`), a Step Functions task
fails with Lambda.TooManyRequestsException (`local.lambda_routing`), an SQS event source leaves the batch on the
queue (`local.queue_worker`).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from local.function_env import function_environment
from local.template import ACCOUNT, REGION, LocalSetupError

Handler = Callable[[Any, Any], Any]


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools and the handlers read. The remaining time
    counts down from `timeout_seconds` (the template's default FunctionTimeout unless given), as in Lambda."""

    function_name: str = "local"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:local"
    memory_limit_in_mb: int = 512
    timeout_seconds: float = 25.0
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


@contextmanager
def service_name(name: str | None) -> Iterator[None]:
    """Log lines written in this thread carry `"service": name`. In Lambda each function has its own process and its
    Logger takes POWERTOOLS_SERVICE_NAME when created; here one Logger (the layer's) serves every function, so the
    running function's name is set per invocation, as a thread-local key (which Powertools puts over the Logger's)."""
    if not name:
        yield
        return
    from aws_lambda_powertools.logging.formatter import THREAD_LOCAL_KEYS

    token = THREAD_LOCAL_KEYS.set({**THREAD_LOCAL_KEYS.get(), "service": name})
    try:
        yield
    finally:
        THREAD_LOCAL_KEYS.reset(token)


THROTTLE_REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"


class FunctionThrottled(RuntimeError):
    """Every reserved execution of the function is busy: Lambda refuses the invocation at once with HTTP 429,
    TooManyRequestsException, Reason ReservedFunctionConcurrentInvocationLimitExceeded. The handler did not run."""

    reason = THROTTLE_REASON

    def __init__(self, function_name: str, reserved_concurrency: int | None) -> None:
        super().__init__(f"Rate Exceeded. ({function_name}: all {reserved_concurrency} reserved concurrent executions busy)")
        self.function_name = function_name
        self.reserved_concurrency = reserved_concurrency


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
    _loading: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Counters (under _counting): invocations that ran, invocations refused, executions running now and the most at once.
    invocations: int = field(default=0, init=False)
    throttles: int = field(default=0, init=False)
    concurrent: int = field(default=0, init=False)
    max_concurrent: int = field(default=0, init=False)
    _counting: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        # Made once, before any invocation: a semaphore made on first use could be replaced while held.
        # Reserved concurrency 0 is allowed, as in Lambda: the function is throttled on every invocation.
        if self.reserved_concurrency is not None:
            self._slots = threading.BoundedSemaphore(max(0, self.reserved_concurrency))

    @property
    def short_name(self) -> str:
        """The folder under functions/: openmarket, wooxy, wwt, tracked ..."""
        return self.code_dir.name

    def load(self) -> None:
        module_file, attr = self.handler_name.rsplit(".", 1)
        module_name = f"local_function_{self.logical_id}"  # unique: every function's module is called app.py
        try:
            with function_environment(self.environment):  # import-time code sees its own env too
                module = load_module(self.code_dir / f"{module_file}.py", module_name)
        except ImportError as exc:
            raise LocalSetupError(f"cannot load {self.code_dir / module_file}.py for {self.logical_id}") from exc
        if not callable(getattr(module, attr, None)):
            raise LocalSetupError(f"{self.logical_id}: {self.handler_name} is not a function")
        self._module = module

    def restart(self) -> None:
        """The next invocation is a cold start: the module is loaded anew and reads `environment` again, as Lambda
        starts new execution environments after a configuration change."""
        with self._loading:
            self._module = None

    def invoke(self, event: Any) -> Any:
        """Run the handler like Lambda does: its environment, a fresh context, at most `reserved_concurrency` at once.
        With every reserved execution busy it raises `FunctionThrottled` at once (counted in `throttles`), as
        Lambda answers a synchronous invoke over the reserved concurrency: it never waits for a slot."""
        with self._loading:  # concurrent first invocations load the module once
            if self._module is None:
                self.load()
        handler: Handler = getattr(self._module, self.handler_name.rsplit(".", 1)[1])
        if self._slots is not None and not self._slots.acquire(blocking=False):
            with self._counting:
                self.throttles += 1
            raise FunctionThrottled(self.name, self.reserved_concurrency)
        with self._counting:
            self.invocations += 1
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            with function_environment(self.environment), service_name(self.environment.get("POWERTOOLS_SERVICE_NAME")):
                context = LambdaContext(self.name, self.arn, self.memory, self.timeout)
                # A JSON round trip, as Lambda gives: the handler cannot share objects with its caller.
                return json.loads(json.dumps(handler(json.loads(json.dumps(event)), context)))
        finally:
            with self._counting:
                self.concurrent -= 1
            if self._slots is not None:
                self._slots.release()

    def stats(self) -> dict[str, Any]:
        """What Lambda's metrics would show for this function since the start: Invocations (those that ran),
        Throttles (those refused), ConcurrentExecutions (now and the most at once)."""
        with self._counting:
            return {
                "function": self.logical_id,
                "name": self.name,
                "reserved_concurrency": self.reserved_concurrency,
                "invocations": self.invocations,
                "throttles": self.throttles,
                "concurrent": self.concurrent,
                "max_concurrent": self.max_concurrent,
            }

    def handle(self, event: Any, _context: Any) -> Any:
        """The (event, context) handler shape `route_lambda_invocations` calls; `invoke` makes the real context."""
        return self.invoke(event)

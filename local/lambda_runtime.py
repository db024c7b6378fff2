"""The Lambda runtime, in-process: the context object, loading a function's code, and calling its handler.

The local run, the tests and the bench all call the real functions/<name>/app.py handlers in this process
instead of in a container; this module is the one place that imports a function's module and the one Lambda
context object they all pass. No moto here: calls made inside moto reach these handlers through
`local.lambda_routing`.
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
    _loading: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        # Made once, before any invocation: a semaphore made on first use could be replaced while held.
        if self.reserved_concurrency is not None:
            self._slots = threading.BoundedSemaphore(max(1, self.reserved_concurrency))

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

    def invoke(self, event: Any) -> Any:
        """Run the handler like Lambda does: its environment, a fresh context, at most `reserved_concurrency` at once.
        Local simplification: a busy function makes the caller wait (up to its timeout) instead of throttling."""
        with self._loading:  # concurrent first invocations load the module once
            if self._module is None:
                self.load()
        handler: Handler = getattr(self._module, self.handler_name.rsplit(".", 1)[1])
        if self._slots is not None and not self._slots.acquire(timeout=self.timeout):
            raise FunctionThrottled(f"{self.name}: all {self.reserved_concurrency} reserved executions busy")
        try:
            with function_environment(self.environment), service_name(self.environment.get("POWERTOOLS_SERVICE_NAME")):
                context = LambdaContext(self.name, self.arn, self.memory, self.timeout)
                # A JSON round trip, as Lambda gives: the handler cannot share objects with its caller.
                return json.loads(json.dumps(handler(json.loads(json.dumps(event)), context)))
        finally:
            if self._slots is not None:
                self._slots.release()

    def handle(self, event: Any, _context: Any) -> Any:
        """The (event, context) handler shape `route_lambda_invocations` calls; `invoke` makes the real context."""
        return self.invoke(event)

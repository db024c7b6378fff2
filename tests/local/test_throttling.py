"""Reserved concurrency throttles as in Lambda: a synchronous invoke over it is refused at once and counted, and
each caller meets the refusal as it does on AWS (API Gateway: 500; Step Functions: Lambda.TooManyRequestsException,
which a Retry matches). The queue poller's side is in test_queue_worker.py."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from local.api_server import ApiServer
from local.lambda_routing import wait_for_execution
from local.lambda_runtime import FunctionThrottled
from local.stack import LocalAws
from tests.local.probe_stack import Holder, probe_stack, set_handler, wait_for


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalAws]:
    with probe_stack(tmp_path) as aws:
        yield aws


@pytest.fixture
def single(stack: LocalAws) -> Iterator[Holder]:
    """The Single function (reserved concurrency 1): held invocations wait for release; others echo their event."""
    holder = Holder(stack.functions["Single"])

    def handler(event: Any, _context: Any) -> Any:
        return holder.handle(event) or {"answered": event}

    set_handler(holder.function, handler)
    yield holder
    holder.release()


def test_an_invoke_over_the_reserved_concurrency_is_refused_at_once_and_counted(single: Holder):
    function = single.function
    assert function.reserved_concurrency == 1
    assert function.timeout == 30
    single.hold()

    started = time.monotonic()
    with pytest.raises(FunctionThrottled) as caught:
        function.invoke({"n": 1})
    assert time.monotonic() - started < 1.0  # refused, not queued for the 30 s timeout (the held call waits 20 s)
    assert caught.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert caught.value.function_name == function.name
    assert function.stats() | {"name": None} == {
        "function": "Single",
        "name": None,
        "reserved_concurrency": 1,
        "invocations": 1,  # the held one; the refused one never ran
        "throttles": 1,
        "concurrent": 1,
        "max_concurrent": 1,
    }

    single.release()
    assert function.invoke({"n": 2}) == {"answered": {"n": 2}}  # the slot is free again
    assert (function.throttles, function.invocations, function.concurrent) == (1, 2, 0)


def test_reserved_concurrency_zero_refuses_every_invoke(stack: LocalAws):
    single = stack.functions["Single"]
    function = dataclasses.replace(single, logical_id="Stopped", reserved_concurrency=0)  # as ReservedConcurrentExecutions: 0
    set_handler(function, lambda event, _context: event)
    for _ in range(3):
        with pytest.raises(FunctionThrottled):
            function.invoke({})
    assert (function.throttles, function.invocations) == (3, 0)


def test_api_gateway_answers_a_throttled_function_with_500_in_the_error_shape(single: Holder):
    lines: list[str] = []
    # Every route of api/openapi.yaml pointed at the Single function.
    aws = SimpleNamespace(api_target=lambda _integration: "Single", functions={"Single": single.function}, mappings=[])
    api = ApiServer(aws, 0, log=lines.append)  # type: ignore[arg-type]
    single.hold()

    answer = api.answer("GET", "/wooxy/messages/5d91537bd132fdf45916520a", {"Host": "127.0.0.1"}, b"")

    assert answer.status == 500  # API Gateway's answer to a refused Lambda invocation (never Lambda's 429)
    assert answer.headers["Content-Type"] == "application/json"
    assert json.loads(answer.body) == {
        "error": {"code": "internal_error", "message": "Internal server error", "details": {"gateway_response": "INTEGRATION_FAILURE"}}
    }
    assert single.function.throttles == 1
    assert lines == ["[api] probe: throttled (reserved concurrency 1)"]
    single.release()
    assert api.answer("GET", "/wooxy/messages/5d91537bd132fdf45916520a", {"Host": "127.0.0.1"}, b"").status != 500


def failures(stack: LocalAws, execution_arn: str) -> list[str]:
    history = stack.client("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [event["taskFailedEventDetails"]["error"] for event in history if event["type"] == "TaskFailed"]


def test_a_throttled_step_functions_task_is_retried_and_succeeds(stack: LocalAws, single: Holder):
    sfn = stack.client("stepfunctions")
    single.hold()
    execution = sfn.start_execution(stateMachineArn=stack.state_machines["Machine"], input=json.dumps({"n": 7}))["executionArn"]
    wait_for(lambda: single.function.throttles >= 1, 20, "the task to be throttled")
    single.release()  # before the Retry's 1 s interval has passed (two attempts are left in any case)

    described = wait_for_execution(sfn, execution, timeout=30)

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"answer": {"answered": {"n": 7}}}
    throttles = single.function.throttles
    assert 1 <= throttles <= 2
    assert failures(stack, execution) == ["Lambda.TooManyRequestsException"] * throttles


def test_a_task_throttled_past_its_retries_fails_with_lambda_too_many_requests(stack: LocalAws, single: Holder):
    sfn = stack.client("stepfunctions")
    single.hold()  # for the whole execution
    execution = sfn.start_execution(stateMachineArn=stack.state_machines["Machine"], input="{}")["executionArn"]

    described = wait_for_execution(sfn, execution, timeout=30)

    assert described["status"] == "FAILED"
    assert described["error"] == "Lambda.TooManyRequestsException"
    assert "Status Code: 429" in described["cause"]
    assert single.function.throttles == 3  # the first attempt and MaxAttempts (2) retries, each refused
    assert failures(stack, execution) == ["Lambda.TooManyRequestsException"] * 3
    assert single.function.invocations == 1  # only the held one ran


def test_concurrent_invokes_get_at_most_the_reserved_concurrency(stack: LocalAws):
    function = stack.functions["Probe"]  # reserved concurrency 2
    gate = threading.Barrier(3, timeout=10)  # two invocations and this test

    def handler(event: Any, _context: Any) -> Any:
        gate.wait()
        return event

    set_handler(function, handler)
    outcomes: list[str] = []

    def call() -> None:
        try:
            function.invoke({})
            outcomes.append("ran")
        except FunctionThrottled:
            outcomes.append("throttled")

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads[:2]:
        thread.start()
    wait_for(lambda: function.concurrent == 2, 10, "two running invocations")
    for thread in threads[2:]:
        thread.start()
        thread.join(10)
    gate.wait()
    for thread in threads[:2]:
        thread.join(10)
    assert sorted(outcomes) == ["ran", "ran", "throttled", "throttled", "throttled"]
    assert (function.invocations, function.throttles, function.max_concurrent) == (2, 3, 2)

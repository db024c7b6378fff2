"""A small template built by local.stack.LocalAws whose functions run a handler the test gives (shared by the
throttling and queue-poller tests in tests/local): two queues, two functions with reserved concurrency, SQS event
sources with and without batching settings, and a state machine whose Lambda task retries throttles."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from local.lambda_runtime import LocalFunction
from local.stack import EventSourceMapping, LocalAws
from tests.local import harness

APP = """HANDLER = None


def lambda_handler(event, context):
    return HANDLER(event, context)
"""

TEMPLATE = """
Resources:
  BulkQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 30
  PlainQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 30
  Probe:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {code}
      Handler: app.lambda_handler
      Runtime: python3.13
      Timeout: 30
      ReservedConcurrentExecutions: 2
      Events:
        Bulk:
          Type: SQS
          Properties:
            Queue: !GetAtt BulkQueue.Arn
            BatchSize: 100
            MaximumBatchingWindowInSeconds: 1
            ScalingConfig:
              MaximumConcurrency: 2
            FunctionResponseTypes:
              - ReportBatchItemFailures
        Plain:
          Type: SQS
          Properties:
            Queue: !GetAtt PlainQueue.Arn
  Single:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {code}
      Handler: app.lambda_handler
      Runtime: python3.13
      Timeout: 30
      ReservedConcurrentExecutions: 1
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      Type: STANDARD
      Definition:
        StartAt: Call
        States:
          Call:
            Type: Task
            Resource: arn:aws:states:::lambda:invoke
            Parameters:
              FunctionName: ${{FunctionArn}}
              Payload.$: $
            ResultSelector:
              answer.$: $.Payload
            Retry:
              - ErrorEquals:
                  - Lambda.TooManyRequestsException
                IntervalSeconds: 1
                MaxAttempts: 2
                BackoffRate: 1
            End: true
      DefinitionSubstitutions:
        FunctionArn: !GetAtt Single.Arn
"""


def write_template(tmp: Path, text: str = TEMPLATE) -> Path:
    code = tmp / "probe"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(APP)
    path = tmp / "template.yaml"
    path.write_text(text.format(code=code))
    return path


@contextmanager
def probe_stack(tmp: Path, text: str = TEMPLATE) -> Iterator[LocalAws]:
    """The stack, started; the process environment is put back afterwards (the stack shares its functions' variables)."""
    saved = dict(os.environ)
    aws = LocalAws({}, {}, template_path=write_template(tmp, text)).start()
    try:
        yield aws
    finally:
        aws.stop()
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)


def set_handler(function: LocalFunction, handler: Callable[[Any, Any], Any]) -> None:
    """Make `function` run `handler` (its app.py calls whatever HANDLER is)."""
    function.load()
    sys.modules[f"local_function_{function.logical_id}"].HANDLER = handler


def mapping(aws: LocalAws, event: str) -> EventSourceMapping:
    (found,) = [m for m in aws.mappings if m.event == event]
    return found


def send(aws: LocalAws, queue_url: str, bodies: list[str]) -> None:
    sqs = aws.client("sqs")
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies[start : start + 10])]
        assert not sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")


def queue_counts(aws: LocalAws, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return int(attributes[names[0]]), int(attributes[names[1]])


class Holder:
    """Holds reserved executions of a function: each `hold()` is an invocation that runs until `release()`."""

    def __init__(self, function: LocalFunction) -> None:
        self.function = function
        self.threads: list[threading.Thread] = []
        self._released = threading.Event()

    def handle(self, event: Any) -> Any | None:
        """The part of a test's handler for held invocations: waits (bounded) when the event asks to be held."""
        if isinstance(event, dict) and event.get("hold"):
            self._released.wait(20)
            return {"held": True}
        return None

    def hold(self, count: int = 1) -> None:
        running = self.function.stats()["concurrent"]
        for _ in range(count):
            thread = threading.Thread(target=self.function.invoke, args=({"hold": True},), daemon=True)
            thread.start()
            self.threads.append(thread)
        wait_for(lambda: self.function.stats()["concurrent"] == running + count, 10, f"{count} held invocation(s)")

    def release(self) -> None:
        self._released.set()
        for thread in self.threads:
            thread.join(10)
        assert not any(thread.is_alive() for thread in self.threads)


def event_size(event: dict[str, Any]) -> int:
    return len(json.dumps(event))


# The local runtime's own waits are short: poll often.
wait_for = partial(harness.wait_for, interval=0.01)

"""moto's SQS as the local stack patches it (local.stack._local_sqs): one request at a time on the messages,
except while a long poll waits, so concurrent senders, pollers and invocations settling batches neither fail
nor stall each other."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.stack import LocalAws

TEMPLATE = """
Resources:
  Busy:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 60
"""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalAws]:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    aws = LocalAws({}, {}, template_path=path).start()
    try:
        yield aws
    finally:
        aws.stop()


def test_a_waiting_long_poll_lets_a_send_in_and_receives_it(stack: LocalAws):
    sqs, url = stack.client("sqs"), stack.queues["Busy"]
    answer: list[list[str]] = []
    poll = threading.Thread(
        target=lambda: answer.append([m["Body"] for m in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10).get("Messages", [])])
    )
    poll.start()
    time.sleep(0.3)  # settling: let the poll start waiting (the assertion below does not depend on it)
    started = time.monotonic()
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    poll.join(10)
    assert answer == [["hello"]]
    assert time.monotonic() - started < 5  # not held up until the 10 s poll ended


def test_concurrent_sends_receives_and_deletes_on_one_queue_fail_nothing_and_lose_nothing(stack: LocalAws):
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: moto's races showed up within a few runs
    try:
        sqs, url = stack.client("sqs"), stack.queues["Busy"]
        for n in range(200):
            sqs.send_message(QueueUrl=url, MessageBody=f"old-{n}")
        held: list[dict] = []
        while len(held) < 200:
            held += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        errors: list[str] = []

        def run(work) -> threading.Thread:
            def guarded() -> None:
                try:
                    work()
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")

            return threading.Thread(target=guarded)

        def delete() -> None:
            for message in held:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

        def send() -> None:
            for n in range(200):
                sqs.send_message(QueueUrl=url, MessageBody=f"new-{n}")

        def receive() -> None:
            for _ in range(100):
                sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=0)

        threads = [run(delete), run(send), run(receive)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    kept = int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
    assert kept == 200  # the old ones deleted, every new one kept

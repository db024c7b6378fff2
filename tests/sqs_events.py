"""Real-shaped SQS event records, as Lambda's event source mapping builds them from received messages, and the one
fake clock of moto's SQS that the queue-path tests move."""

from __future__ import annotations

from typing import Any

import pytest


class SqsClock:
    """Moves moto's SQS time forward, so delayed and in-flight messages come due without sleeping."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import moto.sqs.models

        self.offset_ms = 0.0
        real = moto.sqs.models.unix_time_millis
        monkeypatch.setattr(moto.sqs.models, "unix_time_millis", lambda dt=None: real(dt) + self.offset_ms)

    def advance(self, seconds: float) -> None:
        self.offset_ms += seconds * 1000


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of an SQS event for a message from ReceiveMessage (AttributeNames=["All"])."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message["Attributes"],
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }

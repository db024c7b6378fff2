"""Real-shaped SQS event records, as Lambda's event source mapping builds them from received messages."""

from __future__ import annotations

from typing import Any


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

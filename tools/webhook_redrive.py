"""Redrive the webhook DLQ: `python -m tools.webhook_redrive --queue-url <WebhookDeadLetterQueueUrl> --bus <StatusEventBusName>`.

Each message EventBridge dead-lettered holds the whole event. It is put back on the status bus with source
`sms-status.webhook-redrive`, which only the webhook rule matches (other consumers of `sms-status` see nothing
twice), and deleted from the DLQ once the bus has it. The webhook then delivers it with a new 24 hours of retries;
the consumer drops it if it had it already (same `event_id`). Needs sqs:ReceiveMessage and sqs:DeleteMessage on
the DLQ and events:PutEvents on the bus (docs/operations.md). `--endpoint-url` points it at `make run`'s moto.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

REDRIVE_SOURCE = "sms-status.webhook-redrive"


def redrive(sqs: Any, events: Any, queue_url: str, bus: str, limit: int | None = None) -> tuple[int, int]:
    """(redriven, left in the DLQ because unreadable or refused by the bus). Stops when a receive is empty."""
    redriven = kept = 0
    while limit is None or redriven < limit:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60).get(
            "Messages", []
        )
        if not messages:
            break
        for message in messages:
            try:
                event = json.loads(message["Body"])
                entry = {
                    "Source": REDRIVE_SOURCE,
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                    "EventBusName": bus,
                }
            except (ValueError, KeyError, TypeError):
                kept += 1  # not an event: left for a person to look at (it comes back after the visibility timeout)
                continue
            answer = events.put_events(Entries=[entry])
            if answer.get("FailedEntryCount"):
                kept += 1
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            redriven += 1
    return redriven, kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.webhook_redrive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue-url", required=True, help="the stack's Output WebhookDeadLetterQueueUrl")
    parser.add_argument("--bus", required=True, help="the stack's Output StatusEventBusName")
    parser.add_argument("--limit", type=int, help="redrive at most this many events")
    parser.add_argument("--endpoint-url", help="an AWS endpoint other than AWS's (make run: its moto endpoint)")
    parser.add_argument("--region", help="the stack's region (default: the environment's)")
    args = parser.parse_args(argv)
    import boto3

    options = {key: value for key, value in (("endpoint_url", args.endpoint_url), ("region_name", args.region)) if value}
    redriven, kept = redrive(boto3.client("sqs", **options), boto3.client("events", **options), args.queue_url, args.bus, args.limit)
    print(f"redriven: {redriven}; left in the DLQ: {kept}")
    return 0 if kept == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

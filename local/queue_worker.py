"""Lambda's SQS event source, emulated: one poller thread per queue -> function mapping of the template.

Like the real poller: batches of up to BatchSize records in the real SQS event shape; a record is deleted
only when the function succeeded for it. With ReportBatchItemFailures, the ids in `batchItemFailures` stay on
the queue (visible again after the queue's visibility timeout); a raised error or an unreadable response
fails the whole batch. Redrive to the DLQ after maxReceiveCount receives and DelaySeconds are moto's own SQS
behaviour, so delayed re-check messages arrive when they are due. Waits are bounded (1 s long polls) so
`stop()` returns promptly.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

from local.stack import EventSourceMapping
from local.template import REGION

POLL_SECONDS = 1  # long-poll length: also how quickly stop() is noticed


def sqs_event(mapping: EventSourceMapping, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The event Lambda gives a function for a batch of received SQS messages."""
    records = []
    for message in messages:
        attributes = message.get("Attributes") or {}
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attributes.get("SentTimestamp", "0"),
                    "SenderId": attributes.get("SenderId", "AIDALOCAL"),
                    "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", "0"),
                },
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.get("DataType", "String"),
                    }
                    for name, value in (message.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324 - SQS's checksum
                "eventSource": "aws:sqs",
                "eventSourceARN": mapping.queue_arn,
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


def failed_ids(mapping: EventSourceMapping, batch_ids: set[str], response: Any) -> set[str]:
    """Which records of a batch failed, reading the function's response as Lambda does."""
    if not mapping.report_batch_item_failures:
        return set()
    if response is None:
        return set()
    if not isinstance(response, dict):
        return set(batch_ids)
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return set(batch_ids)
    ids: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in batch_ids:
            return set(batch_ids)  # Lambda treats a malformed failure list as a failed batch
        ids.add(identifier)
    return ids


class QueueWorker:
    """Polls one queue for one function until stopped."""

    def __init__(self, mapping: EventSourceMapping, sqs: Any, log: Callable[[str], None] = print) -> None:
        self.mapping = mapping
        self.sqs = sqs
        self.log = log
        self.batches = 0
        self.failed_records = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqs-poller-{mapping.function.short_name}", daemon=True)

    def start(self) -> QueueWorker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the poller to stop and wait for the batch in hand to finish (bounded). True if it stopped."""
        self._stop.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # keep polling, like Lambda's poller does after errors
                self.log(f"[queue] {self.mapping.function.short_name}: poll failed: {type(exc).__name__}")
                self._stop.wait(1.0)

    def poll_once(self) -> int:
        """One receive + invoke + delete cycle; returns how many records were received."""
        received = self.sqs.receive_message(
            QueueUrl=self.mapping.queue_url,
            MaxNumberOfMessages=min(10, self.mapping.batch_size),
            WaitTimeSeconds=POLL_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = received.get("Messages") or []
        if not messages:
            return 0
        event = sqs_event(self.mapping, messages)
        batch_ids = {message["MessageId"] for message in messages}
        try:
            response = self.mapping.function.invoke(event)
        except Exception as exc:  # the whole batch fails: every record comes back after the visibility timeout
            failed = set(batch_ids)
            name = self.mapping.function.short_name
            self.log(f"[queue] {name}: function error {type(exc).__name__}; {len(failed)} record(s) left on the queue")
        else:
            failed = failed_ids(self.mapping, batch_ids, response)
        done = [message for message in messages if message["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.mapping.queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(done)],
            )
        self.batches += 1
        self.failed_records += len(failed)
        if failed:
            name = self.mapping.function.short_name
            self.log(f"[queue] {name}: {len(failed)} of {len(messages)} record(s) failed; retried after the visibility timeout")
        return len(messages)

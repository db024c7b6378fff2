"""Lambda's SQS event source, emulated: one poller per queue -> function mapping of the template.

Like the real poller:
- Batches: records are gathered with several receives (SQS returns at most 10 a time) until `BatchSize`
  records are in hand, `MaximumBatchingWindowInSeconds` has passed since the first one, or one more record
  would take the event over Lambda's 6 MB invocation payload. With a window of 0 the function gets what one
  receive returned. The event has the real SQS record shape.
- Concurrency: at most `ScalingConfig.MaximumConcurrency` invocations of the mapping at once (5 when not set,
  Lambda's initial scaling). The poller gathers the next batch only once an invocation slot is free, so no
  record is received (and its visibility timeout started) while it cannot be handed to the function.
- Results: a record is deleted only when the function succeeded for it. With ReportBatchItemFailures, the ids in
  `batchItemFailures` stay on the queue (visible again after the queue's visibility timeout); a raised error or
  an unreadable response fails the whole batch.
- Throttling: an invocation refused for the function's reserved concurrency (`FunctionThrottled`) leaves the
  whole batch on the queue, to come back after the visibility timeout; the receive counted, as it does on AWS
  (so throttles, too, move records towards the DLQ). Counted in `throttled_batches`, one log line each. With
  MaximumConcurrency at most the reserved concurrency (and no other caller), the mapping is never throttled.
Redrive to the DLQ after maxReceiveCount receives and DelaySeconds are moto's own SQS behaviour, so delayed
re-check messages arrive when they are due. Every wait is bounded (1 s long polls) so `stop()` returns promptly.

Local simplification: one thread gathers batches for a mapping, one after the other (Lambda runs several
pollers); the invocations themselves run concurrently, each in a thread of its own.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from local.lambda_runtime import FunctionThrottled
from local.stack import EventSourceMapping
from local.template import REGION

POLL_SECONDS = 1  # long-poll length: also how quickly stop() is noticed
RECEIVE_MAX = 10  # SQS's MaxNumberOfMessages limit
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit
IDLE_RECHECK_SECONDS = 0.05  # within the last second of a window, how often an empty queue is asked again
DELETE_MAX = 10  # SQS's DeleteMessageBatch limit


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
    """Polls one queue for one function until stopped: one poller thread, at most `concurrency` invocations at once.

    Counters (also in `stats()`): `receives` (ReceiveMessage calls), `batches` (invocations that ran),
    `records` (records handed to the function), `largest_batch`, `failed_records` (left on the queue after a
    failure), `throttled_batches` / `throttled_records` (invocations refused by the function's reserved
    concurrency, their records left on the queue), `max_in_flight` (the most invocations at once)."""

    def __init__(self, mapping: EventSourceMapping, sqs: Any, log: Callable[[str], None] = print) -> None:
        self.mapping = mapping
        self.sqs = sqs
        self.log = log
        self.concurrency = mapping.concurrency
        self.receives = 0
        self.batches = 0
        self.records = 0
        self.largest_batch = 0
        self.failed_records = 0
        self.throttled_batches = 0
        self.throttled_records = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._counting = threading.Lock()
        self._slots = threading.Semaphore(self.concurrency)
        self._carry: list[tuple[dict[str, Any], int]] = []  # received, but over the payload limit of the last batch
        self._invokers: set[threading.Thread] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqs-poller-{mapping.function.short_name}", daemon=True)

    def start(self) -> QueueWorker:
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the poller to stop without waiting (stop several workers at once, then `stop()` each)."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the poller to stop and wait for the batches in hand to finish (bounded). True if all stopped."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._counting:
            invokers = list(self._invokers)
        for invoker in invokers:
            invoker.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive() and not any(invoker.is_alive() for invoker in invokers)

    def stats(self) -> dict[str, Any]:
        with self._counting:
            return {
                "function": self.mapping.function.logical_id,
                "batch_size": self.mapping.batch_size,
                "batching_window_seconds": self.mapping.batching_window_seconds,
                "maximum_concurrency": self.concurrency,
                "receives": self.receives,
                "batches": self.batches,
                "records": self.records,
                "largest_batch": self.largest_batch,
                "failed_records": self.failed_records,
                "throttled_batches": self.throttled_batches,
                "throttled_records": self.throttled_records,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
            }

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=POLL_SECONDS):  # every invocation slot busy: receive nothing yet
                continue
            try:
                messages = self.gather()
            except Exception as exc:  # keep polling, like Lambda's poller does after errors
                self._slots.release()
                self.log(f"[queue] {self.mapping.function.short_name}: poll failed: {type(exc).__name__}")
                self._stop.wait(1.0)
                continue
            if not messages or self._stop.is_set():  # stopping: what is in hand comes back after the visibility timeout
                self._slots.release()
                continue
            invoker = threading.Thread(target=self._invoke_and_release, args=(messages,), name=f"{self._thread.name}-invoke", daemon=True)
            with self._counting:
                self._invokers.add(invoker)
            invoker.start()

    def _invoke_and_release(self, messages: list[dict[str, Any]]) -> None:
        try:
            self.process(messages)
        except Exception as exc:  # SQS refused a delete: the records come back after the visibility timeout
            self.log(f"[queue] {self.mapping.function.short_name}: batch not settled: {type(exc).__name__}")
        finally:
            self._slots.release()
            with self._counting:
                self._invokers.discard(threading.current_thread())

    def poll_once(self) -> int:
        """Gather one batch and invoke the function with it, in this thread; returns how many records it had."""
        messages = self.gather()
        if messages:
            self.process(messages)
        return len(messages)

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        received = self.sqs.receive_message(
            QueueUrl=self.mapping.queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        with self._counting:
            self.receives += 1
        return received.get("Messages") or []

    def gather(self) -> list[dict[str, Any]]:
        """One batch, as Lambda's poller gathers it (see the module docstring); [] when one long poll found nothing."""
        batch_size = self.mapping.batch_size
        window = self.mapping.batching_window_seconds
        batch: list[dict[str, Any]] = []
        size = len(json.dumps({"Records": []}))
        pending, self._carry = self._carry, []
        if not pending:
            pending = [(message, self._record_size(message)) for message in self._receive(min(RECEIVE_MAX, batch_size), POLL_SECONDS)]
            if not pending:
                return []
        window_ends = time.monotonic() + window  # the window opens with the first record
        while True:
            for index, (message, record_size) in enumerate(pending):
                if batch and size + record_size > MAX_PAYLOAD_BYTES:  # the rest starts the next batch
                    self._carry = pending[index:]
                    return batch
                batch.append(message)
                size += record_size
            remaining = window_ends - time.monotonic()
            if len(batch) >= batch_size or window == 0 or remaining <= 0 or self._stop.is_set():
                return batch
            wait = min(POLL_SECONDS, int(remaining))  # SQS waits in whole seconds
            received = self._receive(min(RECEIVE_MAX, batch_size - len(batch)), wait)
            pending = [(message, self._record_size(message)) for message in received]
            if not received and wait == 0:  # under a second of window left: ask again shortly, not in a busy loop
                self._stop.wait(min(remaining, IDLE_RECHECK_SECONDS))

    def _record_size(self, message: dict[str, Any]) -> int:
        """The bytes one record adds to the event's JSON (its comma included)."""
        return len(json.dumps(sqs_event(self.mapping, [message])["Records"][0])) + 2

    def process(self, messages: list[dict[str, Any]]) -> None:
        """Invoke the function with one batch and settle it: delete what succeeded, leave the rest on the queue."""
        name = self.mapping.function.short_name
        event = sqs_event(self.mapping, messages)
        batch_ids = {message["MessageId"] for message in messages}
        with self._counting:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = self.mapping.function.invoke(event)
        except FunctionThrottled:  # Lambda refused the invocation: the batch stays, back after the visibility timeout
            with self._counting:
                self.throttled_batches += 1
                self.throttled_records += len(messages)
            reserved = self.mapping.function.reserved_concurrency
            count = len(messages)
            self.log(f"[queue] {name}: throttled (reserved concurrency {reserved}); {count} record(s) back after the visibility timeout")
            return
        except Exception as exc:  # the whole batch fails: every record comes back after the visibility timeout
            failed = set(batch_ids)
            self.log(f"[queue] {name}: function error {type(exc).__name__}; {len(failed)} record(s) left on the queue")
        else:
            failed = failed_ids(self.mapping, batch_ids, response)
        finally:
            with self._counting:
                self.in_flight -= 1
        with self._counting:
            self.batches += 1
            self.records += len(messages)
            self.largest_batch = max(self.largest_batch, len(messages))
            self.failed_records += len(failed)
        done = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(done), DELETE_MAX):
            part = done[start : start + DELETE_MAX]
            self.sqs.delete_message_batch(
                QueueUrl=self.mapping.queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(part)],
            )
        if failed:
            self.log(f"[queue] {name}: {len(failed)} of {len(messages)} record(s) failed; retried after the visibility timeout")

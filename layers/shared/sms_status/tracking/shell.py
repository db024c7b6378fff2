"""The I/O around the queue path's rules: a whole SQS batch is checked as one (docs/queue.md).

1. Parse every record (`messages.parse_message`). A malformed record can never succeed: it is logged (reason only)
   and reported as a batch item failure every time, so the redrive policy moves it to the DLQ.
2. Records waiting out a long delay (`not_before`) are sent on unchanged; every other record's ids become asks.
3. Read every asked id's item (BatchGetItem, 100 a call); publish what crashed or refused publishes left behind.
4. One ask per id (`rules.choose`); ids whose query window closed are settled; the rest are looked up together,
   per key kind, at the provider's own limits (Wooxy: 100 ids a request).
5. Write every id's item conditionally on the version read (several at once), claiming the open ones for the
   chain of the record that carried them; only after the writes are the re-checks sent (SendMessageBatch, up to
   100 ids a message), once the events are published (6).
6. Publish the change events written with the answers (PutEvents, 10 a call). An id that is followed on carries
   the ids of its published events in its re-check, and the next check drops them from the outbox in the write it
   makes anyway; the others (final ids) are cleared now. A crash in between republishes, with the same event_id.
A write or a send that fails fails only the records that carry its ids; SQS delivers them again, they recognise
their own claims and carry on. A provider outage is not a record's fault: its ids are written as checked with no
answer and re-checked on their backoff, so an outage never sends tracking to the DLQ. Every AWS call is bounded
(`aws.py`); the lookups get what the invocation has left beyond a reserve for the writes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..aws import WORST_CALL_SECONDS
from ..config import DEFAULT_RECHECK_DELAYS
from ..errors import ServiceError
from ..lookup import StatusService, failed_lookup
from ..model import Provider, to_json, utcnow
from ..observability import emit, logger
from ..publish import EventPublisher
from ..services import measured_lookup
from ..store import StatusStore, StoreConflict, Tracked, TrackKey
from . import rules
from .messages import MalformedMessage, TrackRequest, parse_message

WRITE_WORKERS = 16  # conditional writes in flight per invocation (each a few milliseconds; DynamoDB scales on demand)
SEND_BATCH = 10  # SendMessageBatch's limit
# Kept from the lookups for what follows them (writes, re-checks, events): enough for a stalled AWS call's retries.
END_RESERVE_SECONDS = WORST_CALL_SECONDS


class RecheckQueue:
    """The provider's re-check queue: only the tracking function writes to it (senders get the tracking queue)."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    @classmethod
    def from_url(cls, queue_url: str) -> RecheckQueue:
        from ..aws import client

        return cls(client("sqs"), queue_url)

    def send(self, messages: list[tuple[TrackRequest, int]]) -> list[bool]:
        """SendMessageBatch, 10 a call; whether each message was accepted (a refused entry is tried once more)."""
        from botocore.exceptions import BotoCoreError, ClientError

        sent = [False] * len(messages)
        for start in range(0, len(messages), SEND_BATCH):
            pending = list(range(start, min(start + SEND_BATCH, len(messages))))
            for _ in range(2):
                if not pending:
                    break
                entries = [
                    {"Id": str(n), "MessageBody": to_json(messages[n][0].to_body(), compact=True), "DelaySeconds": messages[n][1]}
                    for n in pending
                ]
                try:
                    answer = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
                except (BotoCoreError, ClientError):
                    break  # the client already retried: these fail, the records carrying them come back
                for success in answer.get("Successful", []):
                    sent[int(success["Id"])] = True
                pending = [n for n in pending if not sent[n]]
        return sent


def chain_of(message_id: str) -> str:
    """The re-check chain a record claims ids for: the same for every delivery of that record (SQS duplicates and
    redeliveries share a message id), different for any other message."""
    return hashlib.sha256(message_id.encode()).hexdigest()[:32]


def new_events(before: Tracked | None, after: Tracked) -> list[dict[str, Any]]:
    """The events a write added to the item's outbox (this invocation publishes them)."""
    known = {event["event_id"] for event in before.outbox} if before else set()
    return [event for event in after.outbox if event["event_id"] not in known]


def count_final(item: Tracked, now: datetime) -> None:
    """The delivery analytics of a message that just became final: its outcome and its time to final, from the
    provider's submit time (else when tracking started) to the first final answer."""
    report = item.report
    assert report is not None
    provider, status = str(report.provider), str(report.status)
    start = min(report.submitted_at or item.tracked_since, item.tracked_since)
    emit("FinalOutcomes", 1, provider=provider, status=status)
    emit("TimeToFinal", max(0.0, (now - start).total_seconds()), provider=provider)


@dataclass
class BatchResult:
    """What one batch did: the records to report as failed, and counts for the log line."""

    failed: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, value: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + value


class Tracker:
    """Reads the batch's items once, looks up the ids the rules pick together, writes each decided item
    (conditionally, on the version read), sends the re-checks and publishes the events. Every decision is in
    `rules`."""

    def __init__(
        self,
        provider: Provider,
        service: StatusService,
        store: StatusStore,
        publisher: EventPublisher,
        queue: RecheckQueue,
        query_window: timedelta,
        now: Callable[[], datetime] = utcnow,
        recheck_delays: tuple[int, ...] = DEFAULT_RECHECK_DELAYS,
        recheck_queue_arn: str | None = None,
    ) -> None:
        self.provider = provider
        self.service = service
        self.store = store
        self.publisher = publisher
        self.queue = queue
        self.window = rules.window_for(provider, query_window)
        self.now = now
        self.recheck_delays = recheck_delays
        self.recheck_queue_arn = recheck_queue_arn

    # ---- a batch -------------------------------------------------------------------------------------
    def handle(self, records: list[SQSRecord], remaining: Callable[[], float] | None = None) -> set[str]:
        """Check every record of a batch; returns the message ids of the records that failed."""
        started = time.monotonic()
        remaining = remaining or (lambda: self.service.deadline + END_RESERVE_SECONDS - (time.monotonic() - started))
        rnd = rules.Round(self.provider, self.window, self.now(), self.recheck_delays)
        outcome = BatchResult()
        asks: list[rules.Ask] = []
        hops: list[tuple[TrackRequest, int, list[rules.Ask]]] = []
        for record in records:
            request = self._parse(record, outcome)
            if request is None:
                continue
            enqueued_at = datetime.fromtimestamp(int(record.attributes.sent_timestamp) / 1000, UTC)
            request = rules.held_request(request, enqueued_at, self.recheck_delays)
            record_asks = rules.asks_of(
                self.provider,
                request,
                record=record.message_id,
                own_chain=chain_of(record.message_id),
                enqueued_at=enqueued_at,
                redelivered=int(record.attributes.approximate_receive_count or 1) > 1,
            )
            wait = rules.chained_wait(request, rnd.now)
            if wait is None:
                asks.extend(record_asks)
            else:  # not due yet: one more hop, unchanged
                hops.append((request, wait, record_asks[:1]))
        self._send(hops, outcome)
        if asks:
            try:
                self._check(rnd, asks, remaining, outcome)
            except (StoreConflict, ServiceError) as error:
                self._fail(asks, outcome, "tracking check failed; SQS will deliver the records again", error)
            except Exception as error:  # a bug or an AWS error nobody expected: say what failed (its type, never a body)
                self._fail(asks, outcome, "tracking batch failed unexpectedly", error, level="error")
        logger.info("tracking batch processed", extra={"provider": str(self.provider), "records": len(records), **outcome.counts})
        return outcome.failed

    def _parse(self, record: SQSRecord, outcome: BatchResult) -> TrackRequest | None:
        internal = self.recheck_queue_arn is not None and record.event_source_arn == self.recheck_queue_arn
        try:
            return parse_message(record.body, self.service, internal=internal)
        except MalformedMessage as error:
            # Reported as failed on every receive, so the redrive policy moves it to the DLQ.
            logger.warning(
                "tracking message rejected",
                extra={
                    "provider": str(self.provider),
                    "message_id": record.message_id,
                    "reason": str(error),
                    "receive_count": record.attributes.approximate_receive_count,
                },
            )
            outcome.failed.add(record.message_id)
            return None

    def _fail(self, asks: Iterable[rules.Ask], outcome: BatchResult, message: str, error: Exception, level: str = "warning") -> None:
        records = {ask.record for ask in asks}
        outcome.failed |= records
        code = error.code if isinstance(error, ServiceError) else type(error).__name__
        getattr(logger, level)(message, extra={"provider": str(self.provider), "records": len(records), "error_type": code})

    # ---- the check -----------------------------------------------------------------------------------
    def _check(self, rnd: rules.Round, asks: list[rules.Ask], remaining: Callable[[], float], outcome: BatchResult) -> None:
        stored = self.store.get_many({ask.key for ask in asks})
        # First, before any provider call: no provider outage can hold these back.
        stale = rules.stale_events(rnd, asks, stored)
        self._publish(rnd, stale, stored, asks, outcome, cleared=stored)

        chosen = rules.choose(rnd, asks, stored)
        verdicts, to_check = rules.triage(rnd, chosen, stored)
        lookup_seconds = remaining() - min(END_RESERVE_SECONDS, remaining() / 2)
        answers = self._look_up(to_check, lookup_seconds)
        for ask in to_check:
            verdicts[ask.key] = rules.read_answer(rnd, stored.get(ask.key), answers[ask.key])

        written = self._write_all(rnd, chosen, verdicts, stored, outcome)
        claimed = [(ask, item) for ask in chosen if (item := written.get(ask.key)) is not None and item.chain == ask.own_chain]
        events = [(key, event) for key, item in written.items() for event in new_events(stored.get(key), item)]
        # The events of ids this batch claimed go out with their re-check, which clears them at the next check;
        # the others (final, or followed by another chain) are cleared now.
        following = {ask.key for ask, _ in claimed}
        published = self._publish(rnd, events, written, chosen, outcome, clear=lambda key: key not in following)
        self._send(rules.recheck_messages(rnd, claimed, published), outcome)
        outcome.add("ids", len({ask.key for ask in asks}))
        outcome.add("checked", len(to_check))
        outcome.add("claimed", len(claimed))
        outcome.add("events", len(events))

    def _look_up(self, asks: list[rules.Ask], seconds: float) -> dict[TrackKey, rules.ProviderAnswer]:
        answers: dict[TrackKey, rules.ProviderAnswer] = {}
        by_kind: dict[str, list[rules.Ask]] = {}
        for ask in asks:
            by_kind.setdefault(ask.key.kind, []).append(ask)
        for kind, group in by_kind.items():
            keys = [ask.key.id for ask in group]
            try:
                reports = measured_lookup(self.service, keys, kind, via="queue", seconds=seconds)  # type: ignore[arg-type]
            except ServiceError as error:
                # An outage, a timeout, refused credentials: not the messages' fault. No answer this time; the ids
                # are checked again on their backoff like any open message, and the records are processed.
                logger.warning(
                    "provider unavailable; the ids are checked again later",
                    extra={"provider": str(self.provider), "error_code": error.code, "ids": len(keys)},
                )
                answers.update((ask.key, rules.LookupFailed(error.code)) for ask in group)
                continue
            for ask, report in zip(group, reports, strict=True):
                code = failed_lookup(report)
                answers[ask.key] = report if code is None else rules.LookupFailed(code)
        return answers

    def _write_all(
        self,
        rnd: rules.Round,
        chosen: list[rules.Ask],
        verdicts: Mapping[TrackKey, rules.Verdict],
        stored: Mapping[TrackKey, Tracked],
        outcome: BatchResult,
    ) -> dict[TrackKey, Tracked]:
        """Every chosen id's item, written conditionally on the version read, several at once. A write that fails
        fails the record that carried the id (SQS delivers it again); the others go on."""

        def write(ask: rules.Ask) -> Tracked | None:
            def change(current: Tracked | None) -> Tracked | None:
                decided = rules.next_item(rnd, ask, verdicts[ask.key], current)
                return decided.item if decided else None

            return self.store.update(ask.key, change, read=stored.get(ask.key))

        written: dict[TrackKey, Tracked] = {}
        with ThreadPoolExecutor(max_workers=max(1, min(WRITE_WORKERS, len(chosen)))) as pool:
            futures = [(ask, pool.submit(write, ask)) for ask in chosen]
            for ask, future in futures:
                try:
                    item = future.result()
                except Exception as error:  # StoreConflict, a refused or stalled write: that record comes back
                    self._fail([ask], outcome, "tracking write failed; SQS will deliver the record again", error)
                    continue
                if item is None:
                    continue
                written[ask.key] = item
                before = stored.get(ask.key)
                if item.final and not (before and before.final):
                    count_final(item, rnd.now)
        return written

    def _send(self, messages: list[tuple[TrackRequest, int, list[rules.Ask]]], outcome: BatchResult) -> None:
        if not messages:
            return
        sent = self.queue.send([(message, delay) for message, delay, _ in messages])
        outcome.add("rechecks", sum(sent))
        for ok, (_, _, asks) in zip(sent, messages, strict=True):
            if not ok:
                self._fail(asks, outcome, "re-check not sent; SQS will deliver the records again", RuntimeError("SendMessageBatch"))

    def _publish(
        self,
        rnd: rules.Round,
        events: list[tuple[TrackKey, dict[str, Any]]],
        items: dict[TrackKey, Tracked],
        asks: Iterable[rules.Ask],
        outcome: BatchResult,
        clear: Callable[[TrackKey], bool] = lambda key: True,
        cleared: dict[TrackKey, Tracked] | None = None,
    ) -> dict[TrackKey, set[str]]:
        """Publish; then clear the published events of the ids `clear` picks from their items (conditional on the
        versions in `items`; the items as cleared go into `cleared`). Returns the published event ids per id. Events
        EventBridge did not take stay in their outboxes, and a message on our re-check queue comes back for their ids
        once the outbox grace has passed (`rules.publish_later`)."""
        if not events:
            return {}
        unpublished = self.publisher.publish([event for _, event in events])
        published: dict[TrackKey, set[str]] = {}
        for key, event in events:
            if event["event_id"] not in unpublished:
                published.setdefault(key, set()).add(event["event_id"])
        if unpublished:
            left = {key for key, event in events if event["event_id"] in unpublished}
            logger.warning(
                "change events not published; they go out with a later message",
                extra={"provider": str(self.provider), "events": len(unpublished)},
            )
            self._send(rules.publish_later(rnd, [ask for ask in asks if ask.key in left]), outcome)

        def clear_one(key: TrackKey) -> Tracked | None:
            change = partial(rules.without_events, event_ids=frozenset(published[key]))
            return self.store.update(key, change, read=items.get(key))

        to_clear = [key for key in published if clear(key)]
        with ThreadPoolExecutor(max_workers=max(1, min(WRITE_WORKERS, len(to_clear)))) as pool:
            for key, future in [(key, pool.submit(clear_one, key)) for key in to_clear]:
                try:
                    item = future.result()
                except Exception as error:  # the events stay in the outbox and go out again later (same event_id)
                    logger.warning(
                        "published events not cleared", extra={"provider": str(self.provider), "error_type": type(error).__name__}
                    )
                    continue
                if item is not None and cleared is not None:
                    cleared[key] = item
        return published

"""The queue path: senders enqueue message ids, we follow each one until it is final (docs/queue.md).

One SQS record = one message: from a sender (the tracking queue) `{"ids": [...]}` (WWT also `{"references":
[...]}`) and an optional `"context"`, nothing else; from ourselves (the re-check queue, which senders are never
granted) the same plus the internal fields `attempt`, `chain`, `since`, `not_before`.
For each record:
1. Parse it. A malformed record can never succeed: it is logged (reason only, never its content) and
   reported as a batch item failure every time, so the redrive policy moves it to the DLQ.
2. Skip ids that are already final, or that another re-check message follows (duplicate deliveries).
3. Settle ids whose provider query window has closed (no provider call); look the others up.
4. Store the answers and, for the ids still open, claim them for ONE new re-check chain (conditional writes),
   THEN send that re-check message for the ids claimed. The chain id is derived from the record's SQS message
   id: a redelivery of the same record (a crash between the write and the send) recognises its own claim and
   sends again; any other message finds the ids claimed and sends nothing, so no failure multiplies messages.
5. Publish the change events written with the answers (the outbox), then remove them from the items. Events a
   crashed processor left in an outbox are published first, before any provider call.
A provider outage (timeouts, 5xx, 429, refused credentials) is not the message's fault: its ids are checked
again on their backoff and the record counts as processed, so an outage never sends tracking to the DLQ.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from .config import ConfigError
from .errors import InvalidRequest, ServiceError
from .lookup import MAX_KEY_LENGTH, Kind, StatusService, as_key
from .mapping import openmarket as openmarket_mapping
from .model import Outcome, Provider, ProviderStatus, Report, Status, iso, parse_iso, utcnow
from .observability import emit, logger
from .publish import EventPublisher, PublishError, change_detail
from .services import measured_lookup, service_for
from .store import RETENTION, StatusStore, StoreConflict, Tracked, TrackKey, apply_report

MAX_IDS = 100
MAX_CONTEXT_BYTES = 4096  # serialized; the context travels in every re-check message and every event
RECORD_MARGIN_SECONDS = 3  # beyond the lookup deadline: the table write, the event and the re-check message
SQS_MAX_DELAY = 900  # seconds: SQS's DelaySeconds limit; longer waits are chained through `not_before`
# Growing waits between checks of one message: 30 s, 1, 2, 4, 8, 15, 30 min, then hourly (RECHECK_DELAYS overrides).
RECHECK_INTERVALS = (30, 60, 120, 240, 480, 900, 1800, 3600)
MAX_RECHECK_DELAY = 12 * 3600  # seconds: a longer wait than half a day between checks is a typo, not a schedule
# A provider time before this is junk (a zero date, an epoch default): tracking start is used instead.
EARLIEST_PROVIDER_TIME = datetime(2000, 1, 1, tzinfo=UTC)
# A re-check chain whose check is this late is taken as lost; a new message for the id takes it over.
CHAIN_LOST_AFTER = timedelta(minutes=30)
# Outbox events older than this were left by a processor that crashed or failed to publish: republished.
# Shorter than the queue's visibility timeout (>= 6 x the function timeout), longer than one invocation.
OUTBOX_GRACE = timedelta(minutes=2)
KEY_FIELDS: dict[str, Kind] = {"ids": "id", "references": "reference"}
INTERNAL_FIELDS = frozenset({"attempt", "chain", "since", "not_before"})
SENDER_FIELDS = frozenset({*KEY_FIELDS, "context"})
RECHECK_FIELDS = SENDER_FIELDS | INTERNAL_FIELDS


class MalformedMessage(Exception):
    """A record that can never succeed. The message says why, without any of the record's content."""


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    table_name: str
    event_bus_name: str
    recheck_queue_url: str  # where re-checks are sent; its ARN tells our records from senders'
    recheck_queue_arn: str
    query_window: timedelta  # Wooxy and WWT; OpenMarket's 5 days come from its mapping module
    recheck_delays: tuple[int, ...] = RECHECK_INTERVALS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TrackingConfig:
        env = os.environ if env is None else env
        values = {}
        for name in ("STATUS_TABLE_NAME", "EVENT_BUS_NAME", "RECHECK_QUEUE_URL", "RECHECK_QUEUE_ARN"):
            value = env.get(name, "").strip()
            if not value:
                raise ConfigError(f"{name} is not set")
            values[name] = value
        raw_hours = env.get("QUERY_WINDOW_HOURS") or "72"
        try:
            hours = float(raw_hours)
        except ValueError as exc:
            raise ConfigError(f"QUERY_WINDOW_HOURS must be a number, got {raw_hours!r}") from exc
        if hours <= 0:
            raise ConfigError("QUERY_WINDOW_HOURS must be positive")
        return cls(
            values["STATUS_TABLE_NAME"],
            values["EVENT_BUS_NAME"],
            values["RECHECK_QUEUE_URL"],
            values["RECHECK_QUEUE_ARN"],
            timedelta(hours=hours),
            parse_recheck_delays(env.get("RECHECK_DELAYS") or ""),
        )


def parse_recheck_delays(raw: str) -> tuple[int, ...]:
    """RECHECK_DELAYS: comma-separated seconds between the checks of a message that is not final; the last one
    repeats. Empty: the default schedule."""
    if not raw.strip():
        return RECHECK_INTERVALS
    try:
        delays = tuple(int(part) for part in raw.split(","))
    except ValueError as exc:
        raise ConfigError(f"RECHECK_DELAYS must be comma-separated whole seconds, got {raw!r}") from exc
    if not all(1 <= delay <= MAX_RECHECK_DELAY for delay in delays):
        raise ConfigError(f"each of RECHECK_DELAYS must be 1 to {MAX_RECHECK_DELAY} seconds")
    return delays


# ---- the message ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TrackRequest:
    kind: Kind
    ids: tuple[str, ...]
    context: dict[str, Any] | None = None
    attempt: int = 0  # how many checks came before this one (0: the sender's own message)
    chain: str | None = None  # set on our re-check messages: which message follows these ids
    since: datetime | None = None  # when tracking started (carried so the window survives missing items)
    not_before: datetime | None = None  # a chained wait: do nothing before this time

    def to_body(self) -> dict[str, Any]:
        field = next(name for name, kind in KEY_FIELDS.items() if kind == self.kind)
        body: dict[str, Any] = {field: list(self.ids), "attempt": self.attempt}
        optional = {"context": self.context, "chain": self.chain, "since": iso(self.since), "not_before": iso(self.not_before)}
        body.update({name: value for name, value in optional.items() if value is not None})
        return body


def _time_field(body: dict[str, Any], name: str) -> datetime | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        parsed = parse_iso(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise MalformedMessage(f"{name} must be an ISO 8601 UTC time")
    return parsed


def parse_message(raw: str, service: StatusService, *, internal: bool = False) -> TrackRequest:
    """Validate one record body completely, before anything is looked up. Only our own re-check messages
    (`internal`: from the re-check queue) may carry attempt, chain, since and not_before."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise MalformedMessage("the body is not JSON") from exc
    if not isinstance(body, dict):
        raise MalformedMessage('the body must be a JSON object like {"ids": [...]}')
    unknown = sorted(set(body) - (RECHECK_FIELDS if internal else SENDER_FIELDS))
    if unknown:
        internal_only = " (internal to the service's own re-checks)" if not internal and set(unknown) <= INTERNAL_FIELDS else ""
        raise MalformedMessage(f"unknown field(s): {', '.join(unknown[:5])}{internal_only}")
    present = [name for name in KEY_FIELDS if name in body]
    if len(present) != 1:
        raise MalformedMessage('the body must hold exactly one of "ids" or "references"')
    field = present[0]
    kind = KEY_FIELDS[field]
    if kind not in service.kinds:
        raise MalformedMessage(f"{service.provider} messages cannot be tracked by {field}")
    ids = body[field]
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_IDS:
        raise MalformedMessage(f"{field} must be an array of 1 to {MAX_IDS} strings")
    ids = [as_key(key, service.provider, kind) for key in ids]
    for position, key in enumerate(ids):
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            raise MalformedMessage(f"{field}[{position}] must be a non-empty string of at most {MAX_KEY_LENGTH} characters")
        try:
            service.validate(key, kind)
        except InvalidRequest as error:
            raise MalformedMessage(f"{field}[{position}]: {error.message}") from error
    context = body.get("context")
    if context is not None:
        if not isinstance(context, dict):
            raise MalformedMessage("context must be a JSON object")
        if len(json.dumps(context, separators=(",", ":")).encode()) > MAX_CONTEXT_BYTES:
            raise MalformedMessage(f"context is larger than {MAX_CONTEXT_BYTES} bytes")
    attempt = body.get("attempt", 0)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or not 0 <= attempt <= 100_000:
        raise MalformedMessage("attempt must be a non-negative integer")
    chain = body.get("chain")
    if chain is not None and (not isinstance(chain, str) or not 1 <= len(chain) <= 64):
        raise MalformedMessage("chain must be a short string")
    return TrackRequest(
        kind=kind,
        ids=tuple(dict.fromkeys(ids)),
        context=context,
        attempt=attempt,
        chain=chain,
        since=_time_field(body, "since"),
        not_before=_time_field(body, "not_before"),
    )


def recheck_interval(attempt: int, delays: tuple[int, ...] = RECHECK_INTERVALS) -> int:
    """Seconds to wait before check number `attempt + 1`."""
    return delays[min(attempt, len(delays) - 1)]


def sqs_delay(wait: timedelta) -> int:
    return max(0, min(SQS_MAX_DELAY, math.ceil(wait.total_seconds())))


# ---- adapters ---------------------------------------------------------------------------------------
class RecheckQueue:
    """The provider's re-check queue: only this function writes to it (senders are granted the tracking queue)."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    @classmethod
    def from_url(cls, queue_url: str) -> RecheckQueue:
        import boto3

        return cls(boto3.client("sqs"), queue_url)

    def send(self, body: dict[str, Any], delay_seconds: int) -> None:
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body, separators=(",", ":")), DelaySeconds=delay_seconds)


# ---- the tracker ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Result:
    """What this check decided for one id, before it is written."""

    report: Report | None  # None: no usable answer this time (lookup error): check again
    at: datetime | None = None  # the history time, when not the report's checked_at (window closing)


class Tracker:
    def __init__(
        self,
        provider: Provider,
        service: StatusService,
        store: StatusStore,
        publisher: EventPublisher,
        queue: RecheckQueue,
        query_window: timedelta,
        now: Callable[[], datetime] = utcnow,
        recheck_delays: tuple[int, ...] = RECHECK_INTERVALS,
        recheck_queue_arn: str | None = None,
    ) -> None:
        self.provider = provider
        self.service = service
        self.store = store
        self.publisher = publisher
        self.queue = queue
        self.query_window = query_window
        self.now = now
        self.recheck_delays = recheck_delays
        self.recheck_queue_arn = recheck_queue_arn

    # ---- the query window ----------------------------------------------------------------------------
    def window_start(self, report: Report | None, since: datetime) -> datetime:
        """The provider's submit time, but never after tracking started (a future or junk time would keep a message
        followed for ever, or overflow): min(submitted_at, tracking start)."""
        submitted = report.submitted_at if report is not None else None
        if submitted is None or submitted < EARLIEST_PROVIDER_TIME:
            return since
        return min(submitted, since)

    def window_end(self, report: Report | None, since: datetime) -> datetime:
        window = openmarket_mapping.QUERY_WINDOW if self.provider is Provider.OPENMARKET else self.query_window
        return self.window_start(report, since) + window

    def window_closed(self, report: Report | None, since: datetime, now: datetime) -> bool:
        return now >= self.window_end(report, since)

    def settle(self, report: Report | None, key: str, now: datetime) -> Report:
        """The final report once the provider can no longer be asked (mapping rules; never a guess)."""
        if report is None:
            report = Report(
                provider=self.provider,
                id=key,
                status=Status.UNKNOWN,
                final=False,
                provider_status=ProviderStatus("query_window_closed", "no usable answer before the query window closed"),
                checked_at=now,
            )
        if report.status is Status.NOT_FOUND:
            settled = report.with_status(Outcome(Status.NOT_FOUND, final=True))  # never found within the window
        elif self.provider is Provider.OPENMARKET:
            settled = openmarket_mapping.on_window_closed(report)
        else:
            settled = report if report.final else report.with_status(Outcome(Status.UNKNOWN, final=True))
        return replace(settled, details={**(settled.details or {}), "query_window_closed": True})

    # ---- one record ----------------------------------------------------------------------------------
    def handle_record(self, record: SQSRecord, out_of_time: bool = False) -> None:
        try:
            internal = self.recheck_queue_arn is not None and record.event_source_arn == self.recheck_queue_arn
            request = parse_message(record.body, self.service, internal=internal)
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
            raise
        enqueued_at = datetime.fromtimestamp(int(record.attributes.sent_timestamp) / 1000, UTC)
        if out_of_time:
            # Too little of the invocation is left to check these ids safely: hand the message back as it is
            # (keeping when tracking started) rather than fail it, which would count towards the DLQ.
            self.queue.send(replace(request, since=request.since or enqueued_at).to_body(), 0)
            logger.info("tracking message deferred: invocation out of time", extra={"provider": str(self.provider)})
            return
        try:
            redelivered = int(record.attributes.approximate_receive_count or 1) > 1
            self.process(request, enqueued_at, chain_of(record.message_id), redelivered=redelivered)
        except (ServiceError, StoreConflict, PublishError) as error:
            code = error.code if isinstance(error, ServiceError) else type(error).__name__
            logger.warning(
                "tracking check failed; SQS will deliver the record again",
                extra={"provider": str(self.provider), "message_id": record.message_id, "error_code": code, "reason": str(error)},
            )
            raise

    def process(self, request: TrackRequest, enqueued_at: datetime, own_chain: str | None = None, redelivered: bool = False) -> None:
        """Check one message's ids. `own_chain`: the re-check chain this record claims open ids for (derived from
        its SQS message id, so a redelivery of the same record claims the same chain)."""
        now = self.now()
        own_chain = own_chain or uuid.uuid4().hex
        # `since` and `not_before` come only from our own re-check queue; held to what ours can carry all the same
        # (defence in depth: no message is followed for ever, or its window kept open, by a future time).
        request = replace(
            request,
            since=min(request.since, enqueued_at) if request.since else None,
            not_before=min(request.not_before, enqueued_at + timedelta(seconds=max(self.recheck_delays))) if request.not_before else None,
        )
        if request.not_before is not None and request.not_before - now >= timedelta(seconds=1):
            self.queue.send(request.to_body(), sqs_delay(request.not_before - now))  # a chained wait: one more hop
            return
        keys = {key: TrackKey(self.provider, request.kind, key) for key in request.ids}
        stored = self.store.get_many(keys.values())
        since = request.since or enqueued_at
        # Events a crashed or failed processor left behind go out first: no provider outage can hold them back.
        # A redelivered record publishes its ids' outboxes whatever their age: it may be the very record whose
        # publish failed, and once its ids are final no later message would come for them.
        stale = [
            (item.key, event)
            for item in stored.values()
            if item.outbox and item.outbox_at is not None and (redelivered or now - item.outbox_at >= OUTBOX_GRACE)
            for event in item.outbox
        ]
        self._publish_or_defer(stale, request, since)
        if stale:
            stored = self.store.get_many(keys.values())  # publishing cleared those outboxes

        results: dict[str, _Result] = {}
        to_check: list[str] = []
        for key in request.ids:
            item = stored.get(keys[key])
            if not self._follows(item, request, own_chain, now):
                continue
            report = item.report if item else None
            if self.window_closed(report, item.tracked_since if item else since, now):
                results[key] = _Result(self.settle(report, key, now), at=now)
            else:
                to_check.append(key)
        if to_check:
            try:
                answers = measured_lookup(self.service, to_check, request.kind, via="queue")
            except InvalidRequest:
                raise
            except ServiceError as error:
                # An outage, a timeout, refused credentials: not the message's fault. No answer this time; the ids
                # are checked again on their backoff like any open message, and the record is processed.
                logger.warning(
                    "provider unavailable; the ids are checked again later",
                    extra={"provider": str(self.provider), "error_code": error.code, "ids": len(to_check), "attempt": request.attempt},
                )
                answers = [None] * len(to_check)
            for key, answer in zip(to_check, answers, strict=True):
                results[key] = _Result(None) if answer is None else self._read_answer(stored.get(keys[key]), answer, key, now)

        open_keys = [key for key, result in results.items() if not self._final_after(stored.get(keys[key]), result)]
        due = self._next_check(request, open_keys, results, stored, keys, since, now) if open_keys else None

        # Claim before send: write first (each id's answer, and for open ids the new chain, conditionally), then
        # send the one re-check for the ids this record now owns.
        published: list[tuple[TrackKey, dict[str, Any]]] = []
        claimed: list[str] = []
        for key, result in results.items():
            chain = own_chain if key in open_keys else None
            written = self.store.update(keys[key], self._change(keys[key], result, request, since, chain, own_chain, due, now))
            if written is not None:  # the event this write added, if any (its id names the version written)
                published += [(keys[key], event) for event in written.outbox if event["event_id"] == f"{keys[key].pk}#{written.version}"]
                before = stored.get(keys[key])
                if written.report.final and (before is None or not before.report.final):
                    count_final(written, now)
            if chain is not None and (written.chain == own_chain if written is not None else stored.get(keys[key]) is None):
                # Ours now; or never stored yet (no answer so far): nothing to claim it from, so it stays with this
                # message (at most one extra chain per sender duplicate, until an answer is stored).
                claimed.append(key)
        if claimed and due is not None:
            self._send_recheck(request, claimed, since, own_chain, due, now)
        self._publish_or_defer(published, request, since)
        logger.info(
            "tracking record processed",
            extra={
                "provider": str(self.provider),
                "ids": len(request.ids),
                "checked": len(to_check),
                "open": len(open_keys),
                "claimed": len(claimed),
                "events": len(published) + len(stale),
            },
        )

    # ---- helpers -------------------------------------------------------------------------------------
    def _follows(self, item: Tracked | None, request: TrackRequest, own_chain: str, now: datetime) -> bool:
        """Should this message check the id? Exactly one re-check chain follows an open message."""
        if item is None:
            return True
        if item.report.final:
            return False
        if item.chain is None or item.chain == own_chain:  # unclaimed, or claimed by this very record before a crash
            return True
        if request.chain is not None:
            return request.chain == item.chain  # a duplicate or orphaned re-check message: not ours
        # A sender's message for an id that a chain already follows (e.g. an SQS duplicate): leave it to
        # the chain, unless the chain's check is long overdue (its message was lost or went to the DLQ).
        return item.next_check_at is None or now - item.next_check_at > CHAIN_LOST_AFTER

    def _read_answer(self, item: Tracked | None, answer: Report, key: str, now: datetime) -> _Result:
        if answer.details and "error" in answer.details:
            # The lookup of this id failed (not an answer about the message): check again, store nothing.
            return _Result(None)
        if answer.status is Status.NOT_FOUND and (item is None or item.report.status is Status.NOT_FOUND):
            # Never seen yet: senders enqueue right after sending, often before the provider can answer for the
            # message. Stored as not final (ranked with pending) and checked again; final when the window closes.
            return _Result(replace(answer, final=False))
        if answer.status is Status.NOT_FOUND:
            if self.provider is Provider.OPENMARKET:
                # OpenMarket forgets tickets after its 5-day window (711): the ticket aged out, settle it.
                return _Result(self.settle(item.report, key, now), at=now)
            logger.warning("a tracked message is no longer found; checking again", extra={"provider": str(self.provider)})
            return _Result(None)
        return _Result(answer)

    @staticmethod
    def _final_after(item: Tracked | None, result: _Result) -> bool:
        return (item is not None and item.report.final) or (result.report is not None and result.report.final)

    def _next_check(
        self,
        request: TrackRequest,
        open_keys: list[str],
        results: Mapping[str, _Result],
        stored: Mapping[TrackKey, Tracked],
        keys: Mapping[str, TrackKey],
        since: datetime,
        now: datetime,
    ) -> datetime:
        """When the open ids are checked next: on the backoff, but never after the earliest of their window ends."""
        ends = []
        for key in open_keys:
            item = stored.get(keys[key])
            report = results[key].report or (item.report if item else None)
            ends.append(self.window_end(report, item.tracked_since if item else since))
        due = now + timedelta(seconds=recheck_interval(request.attempt, self.recheck_delays))
        return max(now + timedelta(seconds=1), min([due, *ends]))

    def _send_recheck(self, request: TrackRequest, claimed: list[str], since: datetime, chain: str, due: datetime, now: datetime) -> None:
        message = TrackRequest(
            kind=request.kind,
            ids=tuple(claimed),
            context=request.context,
            attempt=request.attempt + 1,
            chain=chain,
            since=since,
            not_before=due if due - now > timedelta(seconds=SQS_MAX_DELAY) else None,
        )
        self.queue.send(message.to_body(), sqs_delay(due - now))

    def _change(
        self,
        key: TrackKey,
        result: _Result,
        request: TrackRequest,
        since: datetime,
        chain: str | None,
        own_chain: str,
        due: datetime | None,
        now: datetime,
    ) -> Callable[[Tracked | None], Tracked | None]:
        """The store update for one id: the answer (never backwards), the chain that follows it, the event.

        Decided again on what is stored at write time (the write is conditional on it): an id another message
        claimed in the meantime is left to that chain, unchanged."""

        def change(current: Tracked | None) -> Tracked | None:
            if current is not None and not self._follows(current, request, own_chain, now):
                return None
            applied = None
            if result.report is not None:
                applied = apply_report(current, result.report, key=key, tracked_since=since, at=result.at)
            if applied is None:
                if current is None or chain is None or current.report.final:
                    return None  # nothing new to store, and no chain to record
                item = current
            else:
                item = applied.item
                if current is None:
                    item = replace(item, context=request.context)
                if applied.changed:
                    version = (current.version if current else 0) + 1
                    event = change_detail(item.report, applied.previous_status, item.context, f"{key.pk}#{version}")
                    item = replace(item, outbox=(*item.outbox, event), outbox_at=now)
            if chain is not None and not item.report.final:
                item = replace(item, chain=chain, next_check_at=due)
            elif item.report.final:
                item = replace(item, chain=None, next_check_at=None)
            end = now if item.report.final else self.window_end(item.report, item.tracked_since)
            return replace(item, expires_at=int((end + RETENTION).timestamp()))

        return change

    def _publish_or_defer(self, events: list[tuple[TrackKey, dict[str, Any]]], request: TrackRequest, since: datetime) -> None:
        """Publish; if EventBridge refuses, the events stay in their outboxes and a message on our re-check queue comes
        back for their ids once the outbox grace has passed, to publish them then. Not left to SQS redelivering this
        record: a duplicate delivery of it may have been deleted, and a final id gets no other message."""
        try:
            self._publish(events)
        except PublishError as error:
            ids = tuple(dict.fromkeys(key.id for key, _ in events))
            later = TrackRequest(kind=request.kind, ids=ids, context=request.context, attempt=request.attempt, since=since)
            self.queue.send(later.to_body(), sqs_delay(OUTBOX_GRACE + timedelta(seconds=1)))
            logger.warning(
                "change events not published; they go out with a later message",
                extra={"provider": str(self.provider), "events": len(events), "reason": str(error)},
            )

    def _publish(self, events: list[tuple[TrackKey, dict[str, Any]]]) -> None:
        if not events:
            return
        self.publisher.publish([event for _, event in events])
        by_key: dict[TrackKey, set[str]] = {}
        for key, event in events:
            by_key.setdefault(key, set()).add(event["event_id"])
        for key, event_ids in by_key.items():

            def clear(current: Tracked | None, event_ids: set[str] = event_ids) -> Tracked | None:
                if current is None or not any(event["event_id"] in event_ids for event in current.outbox):
                    return None
                remaining = tuple(event for event in current.outbox if event["event_id"] not in event_ids)
                return replace(current, outbox=remaining, outbox_at=current.outbox_at if remaining else None)

            self.store.update(key, clear)


def count_final(item: Tracked, now: datetime) -> None:
    """The delivery analytics of a message that just became final: its outcome and its time to final, from the
    provider's submit time (else when tracking started) to the first final answer."""
    provider, status = str(item.report.provider), str(item.report.status)
    start = min(item.report.submitted_at or item.tracked_since, item.tracked_since)
    emit("FinalOutcomes", 1, provider=provider, status=status)
    emit("TimeToFinal", max(0.0, (now - start).total_seconds()), provider=provider)


def chain_of(message_id: str) -> str:
    """The re-check chain a record claims ids for: the same for every delivery of that record (SQS duplicates and
    redeliveries share a message id), different for any other message."""
    return hashlib.sha256(message_id.encode()).hexdigest()[:32]


# ---- the Lambda entry point -------------------------------------------------------------------------
@cache
def tracker_for(provider: Provider) -> Tracker:
    """Built once per container (a cold start) from the environment."""
    try:
        config = TrackingConfig.from_env()
    except ConfigError as exc:
        raise ServiceError(f"configuration error: {exc}") from exc
    return Tracker(
        provider,
        service_for(provider),
        StatusStore.from_name(config.table_name),
        EventPublisher.from_name(config.event_bus_name),
        RecheckQueue.from_url(config.recheck_queue_url),
        config.query_window,
        recheck_delays=config.recheck_delays,
        recheck_queue_arn=config.recheck_queue_arn,
    )


def reset_trackers() -> None:
    """Forget built trackers (tests change the environment between cases)."""
    tracker_for.cache_clear()


def handle_batch(provider: Provider, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An SQS batch from the provider's tracking queue; only the failed records are reported back."""
    tracker = tracker_for(provider)
    # One record can take up to the lookup deadline; start one only if that much time (and a margin for the
    # table and event writes) is left. Later records are deferred, so the invocation never times out midway.
    reserve_ms = (tracker.service.deadline + RECORD_MARGIN_SECONDS) * 1000
    remaining = getattr(context, "get_remaining_time_in_millis", None)

    def handle(record: SQSRecord) -> None:
        try:
            tracker.handle_record(record, out_of_time=remaining is not None and remaining() < reserve_ms)
        except (MalformedMessage, ServiceError, StoreConflict, PublishError):
            raise  # logged where they are raised
        except Exception as error:  # BatchProcessor only logs at debug: say what failed (its type, never the body)
            logger.error(
                "tracking record failed unexpectedly",
                extra={"provider": str(provider), "message_id": record.message_id, "error_type": type(error).__name__},
            )
            raise

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)

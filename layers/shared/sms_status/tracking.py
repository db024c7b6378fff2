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
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from . import tracking_rules as rules
from .config import DEFAULT_RECHECK_DELAYS, ConfigError, TrackingConfig
from .errors import InvalidRequest, ServiceError
from .lookup import StatusService, as_key, failed_lookup
from .model import Provider, parse_iso, to_json, utcnow
from .observability import emit, logger
from .publish import EventPublisher, PublishError
from .services import measured_lookup, service_for
from .store import StatusStore, StoreConflict, Tracked
from .tracking_rules import KEY_FIELDS, TrackRequest
from .validation import check_keys, parse_json

MAX_IDS = 100
MAX_CONTEXT_BYTES = 4096  # serialized; the context travels in every re-check message and every event
RECORD_MARGIN_SECONDS = 3  # beyond the lookup deadline: the table write, the event and the re-check message
INTERNAL_FIELDS = frozenset({"attempt", "chain", "since", "not_before"})
SENDER_FIELDS = frozenset({*KEY_FIELDS, "context"})
RECHECK_FIELDS = SENDER_FIELDS | INTERNAL_FIELDS


class MalformedMessage(Exception):
    """A record that can never succeed. The message says why, without any of the record's content."""


# ---- the message ------------------------------------------------------------------------------------
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
        body = parse_json(raw, '{"ids": [...]}')
    except InvalidRequest as error:
        raise MalformedMessage(error.message) from None
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
    try:  # the API's id rules and messages (validation.py), then the provider's own
        ids = check_keys(body[field], field, MAX_IDS, lambda key: as_key(key, service.provider, kind))
    except InvalidRequest as error:
        raise MalformedMessage(error.message) from None
    for position, key in enumerate(ids):
        try:
            service.validate(key, kind)
        except InvalidRequest as error:
            raise MalformedMessage(f"{field}[{position}]: {error.message}") from error
    context = body.get("context")
    if context is not None:
        if not isinstance(context, dict):
            raise MalformedMessage("context must be a JSON object")
        if len(to_json(context, compact=True).encode()) > MAX_CONTEXT_BYTES:
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
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=to_json(body, compact=True), DelaySeconds=delay_seconds)


# ---- the tracker: the I/O around the rules ----------------------------------------------------------
class Tracker:
    """Reads the ids' items once, looks up the ids the rules pick, writes each decided item (conditionally, on the
    version read), sends the one re-check and publishes the events. Every decision is in `tracking_rules`."""

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
        request = rules.held_request(request, enqueued_at, self.recheck_delays)
        check = rules.Check(
            provider=self.provider,
            window=self.window,
            request=request,
            own_chain=own_chain or uuid.uuid4().hex,
            since=request.since or enqueued_at,
            now=self.now(),
            delays=self.recheck_delays,
            redelivered=redelivered,
        )
        hop = rules.chained_wait(check)
        if hop is not None:
            self._send(*hop)
            return
        stored = {key.id: item for key, item in self.store.get_many(map(check.key, request.ids)).items()}
        stale = rules.stale_events(check, stored)
        stored.update(self._publish_or_defer(check, stale, stored))  # first: no provider outage can hold them back

        triaged = rules.triage(check, stored)
        answers = self._look_up(check, triaged.to_check)
        decision = rules.decide(check, stored, triaged, answers)

        # Claim before send: write first (each id's answer and, for open ids, this record's chain, conditionally),
        # then send the one re-check for the ids this record now owns.
        written: dict[str, Tracked] = {}
        events: list[tuple[str, dict[str, Any]]] = []
        claimed: list[str] = []
        for id in decision.results:
            item, event = self._write(check, decision, id, stored.get(id))
            if item is not None:
                written[id] = item
                if item.report.final:  # it just became final: a final item is never followed, so never written again
                    count_final(item, check.now)
            if event is not None:
                events.append((id, event))
            if id in decision.open and rules.owns(check, item, stored.get(id)):
                claimed.append(id)
        if claimed and decision.due is not None:
            self._send(*rules.recheck(check, claimed, decision.due))
        self._publish_or_defer(check, events, written)
        logger.info(
            "tracking record processed",
            extra={
                "provider": str(self.provider),
                "ids": len(request.ids),
                "checked": len(triaged.to_check),
                "open": len(decision.open),
                "claimed": len(claimed),
                "events": len(events) + len(stale),
            },
        )

    # ---- the I/O -------------------------------------------------------------------------------------
    def _look_up(self, check: rules.Check, ids: list[str]) -> dict[str, rules.Answer]:
        if not ids:
            return {}
        try:
            reports = measured_lookup(self.service, ids, check.request.kind, via="queue")
        except InvalidRequest:
            raise
        except ServiceError as error:
            # An outage, a timeout, refused credentials: not the message's fault. No answer this time; the ids
            # are checked again on their backoff like any open message, and the record is processed.
            logger.warning(
                "provider unavailable; the ids are checked again later",
                extra={"provider": str(self.provider), "error_code": error.code, "ids": len(ids), "attempt": check.request.attempt},
            )
            return dict.fromkeys(ids, rules.LookupFailed(error.code))
        answers: dict[str, rules.Answer] = {}
        for id, report in zip(ids, reports, strict=True):
            code = failed_lookup(report)
            answers[id] = report if code is None else rules.LookupFailed(code)
        return answers

    def _write(
        self, check: rules.Check, decision: rules.Decision, id: str, read: Tracked | None
    ) -> tuple[Tracked | None, dict[str, Any] | None]:
        """Store what the rules decided, conditional on the item as read; on a conflict the rules decide again on
        what the other writer stored. Returns the item written (or None) and the event it carries."""
        decided: list[rules.Write | None] = [None]

        def change(current: Tracked | None) -> Tracked | None:
            decided[0] = rules.next_item(check, decision, id, current)
            return decided[0].item if decided[0] else None

        item = self.store.update(check.key(id), change, read=read)
        return item, decided[0].event if item is not None and decided[0] else None

    def _send(self, message: TrackRequest, delay_seconds: int) -> None:
        self.queue.send(message.to_body(), delay_seconds)

    def _publish_or_defer(
        self, check: rules.Check, events: list[tuple[str, dict[str, Any]]], items: Mapping[str, Tracked]
    ) -> dict[str, Tracked]:
        """Publish, then clear the events from their items (conditional on the versions in `items`); returns the items
        as cleared. If EventBridge refuses, the events stay in their outboxes for a later message (`publish_later`)."""
        if not events:
            return {}
        try:
            self.publisher.publish([event for _, event in events])
        except PublishError as error:
            self._send(*rules.publish_later(check, [id for id, _ in events]))
            logger.warning(
                "change events not published; they go out with a later message",
                extra={"provider": str(self.provider), "events": len(events), "reason": str(error)},
            )
            return {}
        published: dict[str, set[str]] = {}
        for id, event in events:
            published.setdefault(id, set()).add(event["event_id"])
        cleared = {}
        for id, event_ids in published.items():
            clear = partial(rules.without_events, event_ids=frozenset(event_ids))
            item = self.store.update(check.key(id), clear, read=items.get(id))
            if item is not None:
                cleared[id] = item
        return cleared


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

"""The queue path's rules, with no I/O: given the stored items, the provider's answers and the time, what to
write, which events to publish and when to check again (docs/queue.md). `tracking.py` is the shell that reads,
looks up, writes, sends and publishes; everything it decides comes from here, so each rule is tested alone.

The rules, in the order a record meets them:
- A chained wait (`not_before` beyond SQS's 15-minute delay) is one more hop, nothing else.
- Events left in an outbox by a crashed or refused publish go out first (`stale_events`).
- One re-check chain follows an open id (`follows`): a message that is not the id's chain leaves it alone.
- An id whose query window has closed is settled without asking the provider (`settle`); the others are asked.
- An answer may not be stored as it is (`read_answer`): not-found before the message is known stays open, a
  failed lookup stores nothing; the never-backwards rule is `store.apply_report`.
- The open ids are claimed for this record's chain with their answers (`next_item`), then checked again on the
  backoff, never after the earliest of their window ends (`decide`, `recheck`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .config import DEFAULT_RECHECK_DELAYS
from .lookup import Kind
from .mapping import openmarket as openmarket_mapping
from .model import Outcome, Provider, ProviderStatus, Report, Status, iso
from .publish import change_detail
from .store import RETENTION, Tracked, TrackKey, apply_report

SQS_MAX_DELAY = 900  # seconds: SQS's DelaySeconds limit; longer waits are chained through `not_before`
# A provider time before this is junk (a zero date, an epoch default): tracking start is used instead.
EARLIEST_PROVIDER_TIME = datetime(2000, 1, 1, tzinfo=UTC)
# A re-check chain whose check is this late is taken as lost; a new message for the id takes it over.
CHAIN_LOST_AFTER = timedelta(minutes=30)
# Outbox events older than this were left by a processor that crashed or failed to publish: republished.
# Shorter than the queue's visibility timeout (>= 6 x the function timeout), longer than one invocation.
OUTBOX_GRACE = timedelta(minutes=2)
KEY_FIELDS: dict[str, Kind] = {"ids": "id", "references": "reference"}


@dataclass(frozen=True, slots=True)
class TrackRequest:
    """One tracking message: a sender's (ids, context) or one of our re-checks (plus the internal fields)."""

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


@dataclass(frozen=True, slots=True)
class LookupFailed:
    """No usable answer for an id this time (an outage, a timeout, refused credentials, a per-id error)."""

    code: str


Answer = Report | LookupFailed


# ---- the query window -------------------------------------------------------------------------------
def close_as_unknown(report: Report) -> Report:
    """Wooxy and WWT: an answer still open when the window closes will never be resolved: UNKNOWN, final."""
    return report if report.final else report.with_status(Outcome(Status.UNKNOWN, final=True))


@dataclass(frozen=True, slots=True)
class Window:
    """How long a provider can be asked about a message, and what an open answer becomes when it can no longer."""

    length: timedelta
    close: Callable[[Report], Report] = close_as_unknown
    # The provider forgets a message once its window has passed: a known message answered "not found" aged out.
    forgets_old_messages: bool = False

    def start(self, report: Report | None, since: datetime) -> datetime:
        """The provider's submit time, but never after tracking started (a future or junk time would keep a message
        followed for ever, or overflow): min(submitted_at, tracking start)."""
        submitted = report.submitted_at if report is not None else None
        if submitted is None or submitted < EARLIEST_PROVIDER_TIME:
            return since
        return min(submitted, since)

    def end(self, report: Report | None, since: datetime) -> datetime:
        return self.start(report, since) + self.length


def window_for(provider: Provider, query_window: timedelta) -> Window:
    """OpenMarket's window and rules are its own (mapping/openmarket.py); Wooxy and WWT take QUERY_WINDOW_HOURS."""
    if provider is Provider.OPENMARKET:
        return Window(openmarket_mapping.QUERY_WINDOW, openmarket_mapping.on_window_closed, forgets_old_messages=True)
    return Window(query_window)


def settle(window: Window, report: Report) -> Report:
    """The final report once the provider can no longer be asked (the provider's rules; never a guess)."""
    # Never found within the window: not_found for good. Anything else: the provider's closing rule.
    settled = report.with_status(Outcome(Status.NOT_FOUND, final=True)) if report.status is Status.NOT_FOUND else window.close(report)
    return replace(settled, details={**(settled.details or {}), "query_window_closed": True})


def never_answered(provider: Provider, key: str, now: datetime) -> Report:
    """The final report of an id the provider never answered usably before its window closed."""
    return Report(
        provider=provider,
        id=key,
        status=Status.UNKNOWN,
        final=True,
        provider_status=ProviderStatus("query_window_closed", "no usable answer before the query window closed"),
        checked_at=now,
        details={"query_window_closed": True},
    )


# ---- one check of one message -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Check:
    """What every rule needs to know about the record being processed."""

    provider: Provider
    window: Window
    request: TrackRequest
    own_chain: str  # the chain this record claims open ids for (the same for every delivery of the record)
    since: datetime  # when tracking of these ids started
    now: datetime
    delays: tuple[int, ...] = DEFAULT_RECHECK_DELAYS
    redelivered: bool = False

    def key(self, id: str) -> TrackKey:
        return TrackKey(self.provider, self.request.kind, id)


def held_request(request: TrackRequest, enqueued_at: datetime, delays: tuple[int, ...]) -> TrackRequest:
    """`since` and `not_before` come only from our own re-check queue; held to what ours can carry all the same
    (defence in depth: no message is followed for ever, or its window kept open, by a future time)."""
    longest_wait = timedelta(seconds=max(delays))
    return replace(
        request,
        since=min(request.since, enqueued_at) if request.since else None,
        not_before=min(request.not_before, enqueued_at + longest_wait) if request.not_before else None,
    )


def sqs_delay(wait: timedelta) -> int:
    return max(0, min(SQS_MAX_DELAY, math.ceil(wait.total_seconds())))


def recheck_interval(attempt: int, delays: tuple[int, ...] = DEFAULT_RECHECK_DELAYS) -> int:
    """Seconds to wait before check number `attempt + 1`."""
    return delays[min(attempt, len(delays) - 1)]


def chained_wait(check: Check) -> tuple[TrackRequest, int] | None:
    """A wait longer than SQS can delay one message: send it on again, unchanged, for the next stretch."""
    not_before = check.request.not_before
    if not_before is None or not_before - check.now < timedelta(seconds=1):
        return None
    return check.request, sqs_delay(not_before - check.now)


def stale_events(check: Check, stored: Mapping[str, Tracked]) -> list[tuple[str, dict[str, Any]]]:
    """Events a crashed or refused processor left behind. A redelivered record publishes its ids' outboxes whatever
    their age: it may be the very record whose publish failed, and once its ids are final no later message comes."""
    return [
        (id, event)
        for id, item in stored.items()
        if item.outbox and item.outbox_at is not None and (check.redelivered or check.now - item.outbox_at >= OUTBOX_GRACE)
        for event in item.outbox
    ]


def follows(check: Check, item: Tracked | None) -> bool:
    """Should this message check the id? Exactly one re-check chain follows an open message."""
    if item is None:
        return True
    if item.report.final:
        return False
    if item.chain is None or item.chain == check.own_chain:  # unclaimed, or claimed by this very record before a crash
        return True
    if check.request.chain is not None:
        return check.request.chain == item.chain  # a duplicate or orphaned re-check message: not ours
    # A sender's message for an id that a chain already follows (e.g. an SQS duplicate): leave it to the chain,
    # unless the chain's check is long overdue (its message was lost or went to the DLQ).
    return item.next_check_at is None or check.now - item.next_check_at > CHAIN_LOST_AFTER


@dataclass(frozen=True, slots=True)
class Result:
    """What this check decided for one id, before it is written."""

    report: Report | None  # None: no usable answer this time: nothing to store, check again
    at: datetime | None = None  # the history time, when not the report's checked_at (the window closing)


@dataclass(frozen=True, slots=True)
class Triage:
    settled: dict[str, Result]  # ids whose window has closed: their final report, no provider call
    to_check: list[str]  # ids to ask the provider about


def triage(check: Check, stored: Mapping[str, Tracked]) -> Triage:
    settled: dict[str, Result] = {}
    to_check: list[str] = []
    for id in check.request.ids:
        item = stored.get(id)
        if not follows(check, item):
            continue
        if item is None and check.now >= check.window.end(None, check.since):
            settled[id] = Result(never_answered(check.provider, id, check.now), at=check.now)
        elif item is not None and check.now >= check.window.end(item.report, item.tracked_since):
            settled[id] = Result(settle(check.window, item.report), at=check.now)
        else:
            to_check.append(id)
    return Triage(settled, to_check)


def read_answer(check: Check, item: Tracked | None, answer: Answer) -> Result:
    """What a provider's answer means for a tracked message."""
    if isinstance(answer, LookupFailed):
        return Result(None)  # not an answer about the message: check again, store nothing
    if answer.status is Status.NOT_FOUND and (item is None or item.report.status is Status.NOT_FOUND):
        # Never seen yet: senders enqueue right after sending, often before the provider can answer for the
        # message. Stored as not final (ranked with pending) and checked again; final when the window closes.
        return Result(replace(answer, final=False))
    if answer.status is Status.NOT_FOUND and item is not None:
        if check.window.forgets_old_messages:
            # The provider forgets messages after its window (OpenMarket's 711): the message aged out, settle it.
            return Result(settle(check.window, item.report), at=check.now)
        return Result(None)  # a known message briefly not found (a provider glitch): check again, keep what we have
    return Result(answer)


@dataclass(frozen=True, slots=True)
class Decision:
    results: dict[str, Result]  # every id this record follows, in request order
    open: list[str]  # the ids still open after this check: claimed for this record's chain
    due: datetime | None  # when the open ids are checked next


def decide(check: Check, stored: Mapping[str, Tracked], triaged: Triage, answers: Mapping[str, Answer]) -> Decision:
    results = dict(triaged.settled)
    for id in triaged.to_check:
        results[id] = read_answer(check, stored.get(id), answers[id])
    results = {id: results[id] for id in check.request.ids if id in results}
    # Final stored items are never in `results` (`follows`): an id is open unless this check's answer is final.
    open_ids = [id for id, result in results.items() if not (result.report and result.report.final)]
    if not open_ids:
        return Decision(results, [], None)
    ends = []
    for id in open_ids:
        item = stored.get(id)
        report = results[id].report or (item.report if item else None)
        ends.append(check.window.end(report, item.tracked_since if item else check.since))
    backoff = check.now + timedelta(seconds=recheck_interval(check.request.attempt, check.delays))
    due = max(check.now + timedelta(seconds=1), min([backoff, *ends]))
    return Decision(results, open_ids, due)


@dataclass(frozen=True, slots=True)
class Write:
    """The item to store for one id, and the change event it carries in its outbox (if the status changed)."""

    item: Tracked
    event: dict[str, Any] | None


def next_item(check: Check, decision: Decision, id: str, current: Tracked | None) -> Write | None:
    """The item after this check: the answer (never backwards), the chain that follows it, the event, its expiry.
    None: nothing to write. Decided on `current`, the item the write is conditional on: when another writer got
    there first the shell asks again with what it wrote, and an id another chain claimed meanwhile is left alone."""
    if current is not None and not follows(check, current):
        return None
    key = check.key(id)
    result = decision.results[id]
    applied = apply_report(current, result.report, key=key, tracked_since=check.since, at=result.at) if result.report else None
    event = None
    if applied is None:
        if current is None:
            return None  # no answer to store yet
        item = current  # no new answer (a failed lookup, a stale one): the chain and due time still change
    else:
        item = applied.item
        if current is None:
            item = replace(item, context=check.request.context)
        if applied.changed:
            version = (current.version if current else 0) + 1  # the version this write creates: a stable event id
            event = change_detail(item.report, applied.previous_status, item.context, f"{key.pk}#{version}")
            item = replace(item, outbox=(*item.outbox, event), outbox_at=check.now)
    if item.report.final:
        item = replace(item, chain=None, next_check_at=None)
    else:  # open: this record's chain follows it (`decide` put it in `decision.open`)
        item = replace(item, chain=check.own_chain, next_check_at=decision.due)
    end = check.now if item.report.final else check.window.end(item.report, item.tracked_since)
    return Write(replace(item, expires_at=int((end + RETENTION).timestamp())), event)


def owns(check: Check, written: Tracked | None, before: Tracked | None) -> bool:
    """Does this record's chain follow the id after its write? Ours if the write recorded our chain; or if the id was
    never stored (no answer so far): nothing to claim it from, so it stays with this message (at most one extra chain
    per sender duplicate, until an answer is stored)."""
    return written.chain == check.own_chain if written is not None else before is None


def recheck(check: Check, claimed: list[str], due: datetime) -> tuple[TrackRequest, int]:
    """The one re-check message for the ids this record claimed, and its SQS delay."""
    message = TrackRequest(
        kind=check.request.kind,
        ids=tuple(claimed),
        context=check.request.context,
        attempt=check.request.attempt + 1,
        chain=check.own_chain,
        since=check.since,
        not_before=due if due - check.now > timedelta(seconds=SQS_MAX_DELAY) else None,
    )
    return message, sqs_delay(due - check.now)


def publish_later(check: Check, ids: list[str]) -> tuple[TrackRequest, int]:
    """EventBridge refused: a message on our re-check queue comes back for these ids once the outbox grace has
    passed, to publish them then (their events stay in the outboxes). Not left to SQS redelivering this record: a
    duplicate delivery of it may have been deleted, and a final id gets no other message."""
    request = check.request
    ids_once = tuple(dict.fromkeys(ids))
    later = TrackRequest(kind=request.kind, ids=ids_once, context=request.context, attempt=request.attempt, since=check.since)
    return later, sqs_delay(OUTBOX_GRACE + timedelta(seconds=1))


def without_events(current: Tracked | None, event_ids: frozenset[str]) -> Tracked | None:
    """The item once these events are published (None: nothing to clear)."""
    if current is None or not any(event["event_id"] in event_ids for event in current.outbox):
        return None
    remaining = tuple(event for event in current.outbox if event["event_id"] not in event_ids)
    return replace(current, outbox=remaining, outbox_at=current.outbox_at if remaining else None)

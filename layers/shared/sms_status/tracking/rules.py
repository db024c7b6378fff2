"""The queue path's rules, with no I/O: given the ids a batch asks about, their stored items, the provider's answers
and the time, what to write, which events to publish and when to check again (docs/queue.md). `shell.py` reads,
looks up, writes, sends and publishes; everything it decides comes from here, so each rule is tested alone.

A batch is checked as one: every record's ids become `Ask`s (one id as one record asks about it), and the rules
work per id. In the order a batch meets them:
- A chained wait (`not_before` beyond SQS's 15-minute delay) is one more hop for that record, nothing else.
- Events left in an outbox by a crashed or refused publish go out first (`stale_events`).
- One re-check chain follows an open id (`follows`); of several asks for one id, one acts (`choose`).
- An id whose query window has closed is settled without asking the provider (`triage`); the others are asked,
  all together.
- An answer may not be stored as it is (`read_answer`): not-found before the message is known stays open, a
  failed lookup stores nothing new; the never-backwards rule is `store.apply_report`.
- Every id that was asked is written with the chain that follows it next (`next_item`), even with no answer
  yet, so a second message for it can see that a chain follows it; then the open ids are checked again on the
  backoff, never after the earliest of their window ends, many records' ids in one message (`recheck_messages`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ..config import DEFAULT_RECHECK_DELAYS
from ..mapping import openmarket as openmarket_mapping
from ..model import Outcome, Provider, ProviderStatus, Report, Status
from ..publish import change_detail
from ..store import RETENTION, Tracked, TrackKey, apply_report
from .messages import MAX_IDS, TrackRequest

SQS_MAX_DELAY = 900  # seconds: SQS's DelaySeconds limit; longer waits are chained through `not_before`
# A provider time before this is junk (a zero date, an epoch default): tracking start is used instead.
EARLIEST_PROVIDER_TIME = datetime(2000, 1, 1, tzinfo=UTC)
# A re-check chain whose check is this late is taken as lost; a new message for the id takes it over.
CHAIN_LOST_AFTER = timedelta(minutes=30)
# Outbox events older than this were left by a processor that crashed or failed to publish: republished.
# Longer than one invocation (the tracking function's timeout is at most 5 minutes), shorter than CHAIN_LOST_AFTER.
OUTBOX_GRACE = timedelta(minutes=6)
# Ids per re-check message (as per sender message): 100 ids of 128 characters and their chains are ~20 KB,
# far below SQS's 256 KiB, so ten fit one SendMessageBatch call.
MAX_RECHECK_IDS = MAX_IDS


@dataclass(frozen=True, slots=True)
class LookupFailed:
    """No usable answer for an id this time (an outage, a timeout, refused credentials, a per-id error)."""

    code: str


ProviderAnswer = Report | LookupFailed


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


def never_answered(key: TrackKey, now: datetime) -> Report:
    """The final report of an id the provider never answered usably before its window closed."""
    return Report(
        provider=key.provider,
        id=key.id,
        status=Status.UNKNOWN,
        final=True,
        provider_status=ProviderStatus("query_window_closed", "no usable answer before the query window closed"),
        checked_at=now,
        details={"query_window_closed": True},
    )


# ---- a batch, and the ids it asks about ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Round:
    """What every rule needs to know about the batch being processed."""

    provider: Provider
    window: Window
    now: datetime
    delays: tuple[int, ...] = DEFAULT_RECHECK_DELAYS


@dataclass(frozen=True, slots=True)
class Ask:
    """One id as one record asks about it."""

    key: TrackKey
    record: str  # the SQS message id of the record: its failures are reported per record
    own_chain: str  # the chain this record claims the id for (the same for every delivery of the record)
    since: datetime  # when tracking of the id started
    chain: str | None = None  # a re-check's: the chain it says follows the id; None for a sender's message
    context: dict[str, Any] | None = None
    attempt: int = 0  # checks made before this one
    redelivered: bool = False  # the record was received before (a crash, a failure, an SQS duplicate)
    published: frozenset[str] = frozenset()  # events the previous check published: cleared by this check's write


def held_request(request: TrackRequest, enqueued_at: datetime, delays: tuple[int, ...]) -> TrackRequest:
    """`since` and `not_before` come only from our own re-check queue; held to what ours can carry all the same
    (defence in depth: no message is followed for ever, or its window kept open, by a future time)."""
    longest_wait = timedelta(seconds=max(delays))
    return replace(
        request,
        since=min(request.since, enqueued_at) if request.since else None,
        not_before=min(request.not_before, enqueued_at + longest_wait) if request.not_before else None,
    )


def asks_of(
    provider: Provider, request: TrackRequest, *, record: str, own_chain: str, enqueued_at: datetime, redelivered: bool
) -> list[Ask]:
    since = request.since or enqueued_at
    return [
        Ask(
            key=TrackKey(provider, request.kind, key),
            record=record,
            own_chain=own_chain,
            since=since,
            chain=request.chain_of(position),
            context=request.context,
            attempt=request.attempt,
            redelivered=redelivered,
            published=frozenset(event for event in request.published if event.startswith(f"{provider}#{request.kind}#{key}#")),
        )
        for position, key in enumerate(request.ids)
    ]


def sqs_delay(wait: timedelta) -> int:
    return max(0, min(SQS_MAX_DELAY, math.ceil(wait.total_seconds())))


def recheck_interval(attempt: int, delays: tuple[int, ...] = DEFAULT_RECHECK_DELAYS) -> int:
    """Seconds to wait before check number `attempt + 1`."""
    return delays[min(attempt, len(delays) - 1)]


def chained_wait(request: TrackRequest, now: datetime) -> int | None:
    """A wait longer than SQS can delay one message: the SQS delay to send it on with, unchanged; None: due now."""
    if request.not_before is None or request.not_before - now < timedelta(seconds=1):
        return None
    return sqs_delay(request.not_before - now)


def stale_events(rnd: Round, asks: Iterable[Ask], stored: Mapping[TrackKey, Tracked]) -> list[tuple[TrackKey, dict[str, Any]]]:
    """Events a crashed or refused processor left behind. A redelivered record publishes its ids' outboxes whatever
    their age: it may be the very record whose publish failed, and once its ids are final no later message comes."""
    redelivered: dict[TrackKey, bool] = {}
    published: dict[TrackKey, frozenset[str]] = {}
    for ask in asks:
        redelivered[ask.key] = redelivered.get(ask.key, False) or ask.redelivered
        published[ask.key] = published.get(ask.key, frozenset()) | ask.published
    events = []
    for key, again in redelivered.items():
        item = stored.get(key)
        if item is not None and item.outbox and item.outbox_at is not None and (again or rnd.now - item.outbox_at >= OUTBOX_GRACE):
            events.extend((key, event) for event in item.outbox if event["event_id"] not in published[key])
    return events


def follows(rnd: Round, ask: Ask, item: Tracked | None) -> bool:
    """Should this ask check the id? Exactly one re-check chain follows an open message."""
    if item is None:
        return True
    if item.final:
        return False
    if item.chain is None or item.chain == ask.own_chain:  # unclaimed, or claimed by this very record before a crash
        return True
    if ask.chain is not None:
        return ask.chain == item.chain  # a duplicate or orphaned re-check message: not ours
    # A sender's message for an id that a chain already follows (e.g. an SQS duplicate): leave it to the chain,
    # unless the chain's check is long overdue (its message was lost or went to the DLQ).
    return item.next_check_at is None or rnd.now - item.next_check_at > CHAIN_LOST_AFTER


def choose(rnd: Round, asks: Iterable[Ask], stored: Mapping[TrackKey, Tracked]) -> list[Ask]:
    """One ask per id among those that may check it, in the batch's order: the chain's own re-check first, then the
    furthest re-check (its backoff goes on), then the first sender's message (with the first context given)."""
    candidates: dict[TrackKey, list[Ask]] = {}
    for ask in asks:
        if follows(rnd, ask, stored.get(ask.key)):
            candidates.setdefault(ask.key, []).append(ask)
    chosen = []
    for key, group in candidates.items():
        item = stored.get(key)
        best = min(group, key=lambda ask: (not (item and ask.chain and ask.chain == item.chain), ask.chain is None, -ask.attempt))
        context = best.context if best.context is not None else next((a.context for a in group if a.context is not None), None)
        chosen.append(replace(best, context=context))
    return chosen


@dataclass(frozen=True, slots=True)
class Verdict:
    """What this check decided for one id, before it is written."""

    report: Report | None  # None: no usable answer this time: nothing new to store, check again
    at: datetime | None = None  # the history time, when not the report's checked_at (the window closing)


def triage(rnd: Round, chosen: Iterable[Ask], stored: Mapping[TrackKey, Tracked]) -> tuple[dict[TrackKey, Verdict], list[Ask]]:
    """(the ids whose window has closed, with their final report: no provider call; the asks to look up)."""
    settled: dict[TrackKey, Verdict] = {}
    to_check: list[Ask] = []
    for ask in chosen:
        item = stored.get(ask.key)
        report = item.report if item else None
        since = item.tracked_since if item else ask.since
        if rnd.now < rnd.window.end(report, since):
            to_check.append(ask)
        elif report is None:
            settled[ask.key] = Verdict(never_answered(ask.key, rnd.now), at=rnd.now)
        else:
            settled[ask.key] = Verdict(settle(rnd.window, report), at=rnd.now)
    return settled, to_check


def read_answer(rnd: Round, item: Tracked | None, answer: ProviderAnswer) -> Verdict:
    """What a provider's answer means for a tracked message."""
    stored = item.report if item else None
    if isinstance(answer, LookupFailed):
        return Verdict(None)  # not an answer about the message: check again, store nothing new
    if answer.status is Status.NOT_FOUND and (stored is None or stored.status is Status.NOT_FOUND):
        # Never seen yet: senders enqueue right after sending, often before the provider can answer for the
        # message. Stored as not final (ranked with pending) and checked again; final when the window closes.
        return Verdict(replace(answer, final=False))
    if answer.status is Status.NOT_FOUND and stored is not None:
        if rnd.window.forgets_old_messages:
            # The provider forgets messages after its window (OpenMarket's 711): the message aged out, settle it.
            return Verdict(settle(rnd.window, stored), at=rnd.now)
        return Verdict(None)  # a known message briefly not found (a provider glitch): check again, keep what we have
    return Verdict(answer)


def next_check(rnd: Round, ask: Ask, item: Tracked) -> datetime:
    """When an open id is checked next: on the backoff, never after its window ends, never sooner than a second."""
    backoff = rnd.now + timedelta(seconds=recheck_interval(ask.attempt, rnd.delays))
    return max(rnd.now + timedelta(seconds=1), min(backoff, rnd.window.end(item.report, item.tracked_since)))


@dataclass(frozen=True, slots=True)
class ItemChange:
    """The item to store for one id, and the change event it carries in its outbox (if the status changed)."""

    item: Tracked
    event: dict[str, Any] | None


def next_item(rnd: Round, ask: Ask, verdict: Verdict, current: Tracked | None) -> ItemChange | None:
    """The item after this check: the answer (never backwards), the chain that follows it, the event, its expiry.
    None: nothing to write. Decided on `current`, the item the write is conditional on: when another writer got
    there first the shell asks again with what it wrote, and an id another chain claimed meanwhile is left alone.
    An id with no answer yet is written all the same (no report): the item says which chain follows it."""
    if not follows(rnd, ask, current):
        return None
    if ask.published:  # what the previous check published leaves the outbox with this write (none: no item)
        current = without_events(current, ask.published) or current
    applied = (
        apply_report(current, verdict.report, key=ask.key, tracked_since=ask.since, at=verdict.at) if verdict.report is not None else None
    )
    event = None
    if applied is None:
        item = current or Tracked(ask.key, None, ask.since, context=ask.context)  # no new answer: the chain still moves
    else:
        item = applied.item if current is not None else replace(applied.item, context=ask.context)
        if applied.changed:
            version = (current.version if current else 0) + 1  # the version this write creates: a stable event id
            event = change_detail(item.report, applied.previous_status, item.context, f"{ask.key.pk}#{version}")  # type: ignore[arg-type]
            # `outbox_at` dates the oldest event left: one a refused publish left behind stays as old as it is,
            # so the message that comes back for it after the grace finds it stale.
            item = replace(item, outbox=(*item.outbox, event), outbox_at=item.outbox_at if item.outbox and item.outbox_at else rnd.now)
    if item.final:
        item = replace(item, chain=None, next_check_at=None)
        end = rnd.now
    else:  # open: this record's chain follows it
        item = replace(item, chain=ask.own_chain, next_check_at=next_check(rnd, ask, item))
        end = rnd.window.end(item.report, item.tracked_since)
    return ItemChange(replace(item, expires_at=int((end + RETENTION).timestamp())), event)


def recheck_messages(
    rnd: Round, claimed: Iterable[tuple[Ask, Tracked]], published: Mapping[TrackKey, Iterable[str]] | None = None
) -> list[tuple[TrackRequest, int, list[Ask]]]:
    """The re-check messages for the open ids this batch claimed (each with the item it wrote): ids due at the same
    time after the same number of checks travel together, up to MAX_RECHECK_IDS a message, each with its own chain,
    with the events this batch published for them (`published`: the next check clears them from the outboxes in
    the write it makes anyway, instead of one more write now). Returns (message, SQS delay, the asks it carries)."""
    published = published or {}
    groups: dict[tuple[str, int, datetime], list[tuple[Ask, Tracked]]] = {}
    for ask, item in claimed:
        due = item.next_check_at or rnd.now
        groups.setdefault((ask.key.kind, ask.attempt + 1, due), []).append((ask, item))
    messages = []
    for (kind, attempt, due), group in groups.items():
        for start in range(0, len(group), MAX_RECHECK_IDS):
            part = group[start : start + MAX_RECHECK_IDS]
            message = TrackRequest(
                kind=kind,  # type: ignore[arg-type]
                ids=tuple(ask.key.id for ask, _ in part),
                attempt=attempt,
                chains=tuple(ask.own_chain for ask, _ in part),
                since=min(item.tracked_since for _, item in part),
                not_before=due if due - rnd.now > timedelta(seconds=SQS_MAX_DELAY) else None,
                published=tuple(sorted(event for ask, _ in part for event in published.get(ask.key, ()))),
            )
            messages.append((message, sqs_delay(due - rnd.now), [ask for ask, _ in part]))
    return messages


def publish_later(rnd: Round, asks: Iterable[Ask]) -> list[tuple[TrackRequest, int, list[Ask]]]:
    """EventBridge refused: messages on our re-check queue come back for these ids once the outbox grace has
    passed, to publish them then (their events stay in the outboxes). Not left to SQS redelivering the records: a
    duplicate delivery may have been deleted, and a final id gets no other message. They carry no chain, so they
    publish and check nothing that a chain follows."""
    by_kind: dict[str, dict[TrackKey, Ask]] = {}
    for ask in asks:
        by_kind.setdefault(ask.key.kind, {}).setdefault(ask.key, ask)
    delay = sqs_delay(OUTBOX_GRACE + timedelta(seconds=1))
    messages = []
    for kind, unique in by_kind.items():
        group = list(unique.values())
        for start in range(0, len(group), MAX_RECHECK_IDS):
            part = group[start : start + MAX_RECHECK_IDS]
            since = min(ask.since for ask in part)
            later = TrackRequest(kind=kind, ids=tuple(ask.key.id for ask in part), attempt=max(a.attempt for a in part), since=since)  # type: ignore[arg-type]
            messages.append((later, delay, part))
    return messages


def without_events(current: Tracked | None, event_ids: frozenset[str]) -> Tracked | None:
    """The item once these events are published (None: nothing to clear)."""
    if current is None or not any(event["event_id"] in event_ids for event in current.outbox):
        return None
    remaining = tuple(event for event in current.outbox if event["event_id"] not in event_ids)
    return replace(current, outbox=remaining, outbox_at=current.outbox_at if remaining else None)

"""The queue path's rules (tracking/rules.py), without AWS: given the ids a batch asks about, their stored items,
the provider's answers and the time, the items to write, the events and the re-check messages.

Expected values come from the contract (docs/queue.md): the default schedule 30 s, 1, 2, 4, 8, 15, 30 min, then
hourly; SQS delays at most 900 s; OpenMarket's 5-day window; a chain is lost after 30 minutes overdue; outbox
events are stale after 6 minutes (longer than one invocation of at most 5 minutes); 30 days of retention.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from sms_status.model import Outcome, Provider, ProviderStatus, Report, Status
from sms_status.store import HistoryEntry, Tracked, TrackKey
from sms_status.tracking import rules
from sms_status.tracking.messages import TrackRequest
from sms_status.tracking.rules import Ask, ItemChange, LookupFailed, Round, Verdict, Window

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
SINCE = NOW - timedelta(hours=1)
HOURS_72 = timedelta(hours=72)
RETENTION = timedelta(days=30)
OWN = "own-chain"
OTHER = "other-chain"


def at(moment: datetime) -> int:
    return int(moment.timestamp())


def rnd(provider: Provider = Provider.WOOXY, *, now: datetime = NOW, delays: tuple[int, ...] | None = None) -> Round:
    window = rules.window_for(provider, HOURS_72)
    return Round(provider, window, now) if delays is None else Round(provider, window, now, delays)


def key(message_id: str = "m1", provider: Provider = Provider.WOOXY, kind: str = "id") -> TrackKey:
    return TrackKey(provider, kind, message_id)  # type: ignore[arg-type]


def report(status: Status = Status.SENT, final: bool = False, *, message_id: str = "m1", code: str = "sent", at: datetime = NOW, **fields):
    return Report(Provider.WOOXY, message_id, status, final, ProviderStatus(code, None), checked_at=at, **fields)


def tracked(
    rep: Report, *, chain: str | None = None, next_check_at: datetime | None = None, version: int = 1, since: datetime = SINCE, **fields
) -> Tracked:
    history = (HistoryEntry(str(rep.status), rep.provider_status.code, rep.checked_at.isoformat()),)
    return Tracked(key(rep.id, rep.provider), rep, since, history, chain=chain, next_check_at=next_check_at, version=version, **fields)


def answerless(message_id: str = "m1", *, chain: str | None = OWN, since: datetime = SINCE, **fields) -> Tracked:
    """An item followed with no usable answer yet."""
    return Tracked(key(message_id), None, since, chain=chain, next_check_at=fields.pop("next_check_at", NOW), version=1, **fields)


def ask(
    message_id: str = "m1",
    *,
    provider: Provider = Provider.WOOXY,
    kind: str = "id",
    own: str = OWN,
    chain: str | None = None,
    attempt: int = 0,
    context: dict | None = None,
    redelivered: bool = False,
    since: datetime = SINCE,
    record: str = "r1",
) -> Ask:
    return Ask(key(message_id, provider, kind), record, own, since, chain, context, attempt, redelivered)


# ---- the query window ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("submitted_at", "start"),
    [
        (SINCE - timedelta(minutes=5), SINCE - timedelta(minutes=5)),  # the provider's own time, when earlier
        (SINCE + timedelta(days=30), SINCE),  # a future time would keep the message followed: tracking start
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), SINCE),  # would overflow the window end
        (datetime(1970, 1, 1, tzinfo=UTC), SINCE),  # an epoch default is junk, not a 56-year-old message
        (datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), SINCE),  # before 2000: junk too
        (datetime(2000, 1, 1, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC)),  # the first time taken as real
        (None, SINCE),
    ],
)
def test_the_window_starts_at_the_earlier_of_submit_time_and_tracking_start(submitted_at: datetime | None, start: datetime) -> None:
    window = rules.window_for(Provider.WOOXY, HOURS_72)
    assert window.start(report(submitted_at=submitted_at), SINCE) == start
    assert window.end(report(submitted_at=submitted_at), SINCE) == start + HOURS_72


def test_an_id_with_no_answer_yet_is_windowed_from_tracking_start() -> None:
    window = rules.window_for(Provider.WOOXY, HOURS_72)
    assert (window.start(None, SINCE), window.end(None, SINCE)) == (SINCE, SINCE + HOURS_72)


WINDOWS = [(Provider.OPENMARKET, timedelta(days=5)), (Provider.WOOXY, HOURS_72), (Provider.WWT, HOURS_72)]


@pytest.mark.parametrize(("provider", "length"), WINDOWS)
def test_each_provider_has_its_window(provider: Provider, length: timedelta) -> None:
    # OpenMarket: its documented 5 days whatever QUERY_WINDOW_HOURS says; the others: QUERY_WINDOW_HOURS
    assert rules.window_for(provider, HOURS_72).end(None, SINCE) == SINCE + length
    assert rules.window_for(provider, HOURS_72).forgets_old_messages is (provider is Provider.OPENMARKET)


@pytest.mark.parametrize("provider", list(Provider))
def test_a_message_never_found_within_the_window_settles_as_not_found(provider: Provider) -> None:
    open_not_found = Report(provider, "x1", Status.NOT_FOUND, False, ProviderStatus("not_found", None), checked_at=SINCE)
    settled = rules.settle(rules.window_for(provider, HOURS_72), open_not_found)
    assert settled == replace(open_not_found, final=True, details={"query_window_closed": True})


def test_settling_keeps_the_reports_own_details() -> None:
    settled = rules.settle(rules.window_for(Provider.WOOXY, HOURS_72), report(details={"segments": 2}))
    assert settled == replace(report(), status=Status.UNKNOWN, final=True, details={"segments": 2, "query_window_closed": True})


def test_an_id_never_answered_settles_as_unknown_final() -> None:
    assert rules.never_answered(key("9", Provider.WWT), NOW) == Report(
        provider=Provider.WWT,
        id="9",
        status=Status.UNKNOWN,
        final=True,
        provider_status=ProviderStatus("query_window_closed", "no usable answer before the query window closed"),
        checked_at=NOW,
        details={"query_window_closed": True},
    )


def test_openmarket_code_0_is_a_delivery_once_its_window_closes_others_become_unknown() -> None:
    # OpenMarket: code 0 ("Message sent") is a success when it is the last receipt. Wooxy/WWT: never a guess.
    sent_0 = Report(Provider.OPENMARKET, "T1", Status.SENT, False, ProviderStatus("0", "Message sent"))
    buffered = Report(Provider.OPENMARKET, "T1", Status.SENT, False, ProviderStatus("3", None))
    openmarket = rules.window_for(Provider.OPENMARKET, HOURS_72)
    assert (rules.settle(openmarket, sent_0).status, rules.settle(openmarket, sent_0).final) == (Status.DELIVERED, True)
    assert rules.settle(openmarket, buffered).status is Status.UNKNOWN
    wooxy = rules.window_for(Provider.WOOXY, HOURS_72)
    assert rules.settle(wooxy, report(code="0")).status is Status.UNKNOWN
    delivered = report(Status.DELIVERED, final=True)
    assert rules.settle(wooxy, delivered) == replace(delivered, details={"query_window_closed": True})  # a final answer stays


def test_a_custom_window_rule_is_used_when_the_window_closes() -> None:
    closing = Window(timedelta(hours=1), close=lambda r: r.with_status(Outcome(Status.EXPIRED, final=True)))
    settled = rules.settle(closing, report())
    assert (settled.status, settled.final) == (Status.EXPIRED, True)


# ---- the schedule -----------------------------------------------------------------------------------------
def test_the_recheck_schedule_grows_and_caps() -> None:
    assert [rules.recheck_interval(attempt) for attempt in range(10)] == [30, 60, 120, 240, 480, 900, 1800, 3600, 3600, 3600]


def test_a_custom_schedule_repeats_its_last_delay() -> None:
    assert [rules.recheck_interval(attempt, (1, 1, 2)) for attempt in range(5)] == [1, 1, 2, 2, 2]


def test_sqs_delays_are_whole_seconds_capped_at_the_sqs_maximum() -> None:
    assert rules.sqs_delay(timedelta(seconds=29.2)) == 30
    assert rules.sqs_delay(timedelta(seconds=900)) == 900
    assert rules.sqs_delay(timedelta(hours=1)) == 900
    assert rules.sqs_delay(timedelta(seconds=-5)) == 0


# ---- a record's own times, and its asks ----------------------------------------------------------------------
def test_internal_times_are_held_to_what_our_own_messages_can_carry() -> None:
    enqueued = NOW - timedelta(seconds=10)
    request = TrackRequest("id", ("m1",), since=NOW + timedelta(days=9), not_before=NOW + timedelta(days=9))
    held = rules.held_request(request, enqueued, (30, 60))
    assert held == replace(request, since=enqueued, not_before=enqueued + timedelta(seconds=60))  # the longest wait
    earlier = TrackRequest("id", ("m1",), since=SINCE, not_before=NOW)
    assert rules.held_request(earlier, enqueued, (30, 60)) == earlier


def test_a_senders_message_has_no_internal_times_to_hold() -> None:
    request = TrackRequest("id", ("m1",), context={"o": 1})
    assert rules.held_request(request, NOW, (30,)) == request


def test_a_recheck_asks_about_each_id_with_its_own_chain() -> None:
    request = TrackRequest("reference", ("a", "b"), context={"o": 1}, attempt=4, chains=("c1", "c2"), since=SINCE)
    asks = rules.asks_of(Provider.WWT, request, record="r9", own_chain="mine", enqueued_at=NOW, redelivered=True)
    assert asks == [
        Ask(TrackKey(Provider.WWT, "reference", "a"), "r9", "mine", SINCE, "c1", {"o": 1}, 4, True),
        Ask(TrackKey(Provider.WWT, "reference", "b"), "r9", "mine", SINCE, "c2", {"o": 1}, 4, True),
    ]


def test_a_senders_ids_are_tracked_from_when_the_message_was_enqueued() -> None:
    request = TrackRequest("id", ("a",))
    asks = rules.asks_of(Provider.WOOXY, request, record="r1", own_chain="mine", enqueued_at=NOW, redelivered=False)
    assert asks == [Ask(key("a"), "r1", "mine", NOW, None, None, 0, False)]


def test_a_wait_longer_than_sqs_can_delay_is_one_more_hop() -> None:
    def wait(not_before: datetime | None) -> int | None:
        return rules.chained_wait(TrackRequest("id", ("m1",), not_before=not_before), NOW)

    assert wait(NOW + timedelta(hours=1)) == 900
    assert wait(NOW + timedelta(seconds=90.2)) == 91
    assert wait(NOW + timedelta(seconds=1)) == 1  # a wait of exactly one second is still a hop
    assert wait(NOW + timedelta(seconds=0.9)) is None  # due: checked now
    assert wait(NOW - timedelta(hours=1)) is None
    assert wait(None) is None


# ---- stale outbox events go out first -------------------------------------------------------------------
def test_outbox_events_older_than_the_grace_are_stale_and_a_redelivery_takes_them_all() -> None:
    first, second = {"event_id": "wooxy#id#m1#1"}, {"event_id": "wooxy#id#m1#2"}
    old = tracked(report(), outbox=(first, second), outbox_at=NOW - timedelta(minutes=6))
    just_in_grace = NOW - timedelta(minutes=6) + timedelta(seconds=1)
    young = tracked(report(message_id="m2"), outbox=({"event_id": "wooxy#id#m2#1"},), outbox_at=just_in_grace)
    stored = {key("m1"): old, key("m2"): young}
    assert rules.stale_events(rnd(), [ask("m1"), ask("m2")], stored) == [(key("m1"), first), (key("m1"), second)]
    everything = rules.stale_events(rnd(), [ask("m2", redelivered=True), ask("m1", redelivered=True)], stored)
    assert everything == [(key("m2"), {"event_id": "wooxy#id#m2#1"}), (key("m1"), first), (key("m1"), second)]


@pytest.mark.parametrize("redelivered_first", [True, False])
def test_an_id_asked_by_any_redelivered_record_publishes_its_outbox(redelivered_first: bool) -> None:
    event = {"event_id": "wooxy#id#m1#1"}
    stored = {key(): tracked(report(), outbox=(event,), outbox_at=NOW)}
    asks = [ask(redelivered=redelivered_first, record="r1"), ask(redelivered=not redelivered_first, record="r2")]
    assert rules.stale_events(rnd(), asks, stored) == [(key(), event)]
    assert rules.stale_events(rnd(), [ask(record="r1"), ask(record="r2")], stored) == []  # neither: too young


def test_ids_with_nothing_in_their_outbox_publish_nothing() -> None:
    stored = {key("m1"): tracked(report()), key("m2"): tracked(report(message_id="m2"), outbox_at=NOW - timedelta(hours=1))}
    assert rules.stale_events(rnd(), [ask("m1", redelivered=True), ask("m2", redelivered=True), ask("m3", redelivered=True)], stored) == []


def test_publishing_clears_only_the_published_events() -> None:
    first, second = {"event_id": "e1"}, {"event_id": "e2"}
    item = tracked(report(), outbox=(first, second), outbox_at=SINCE)
    assert rules.without_events(item, frozenset({"e1"})) == replace(item, outbox=(second,))  # the rest keep their age
    assert rules.without_events(item, frozenset({"e1", "e2"})) == replace(item, outbox=(), outbox_at=None)
    assert rules.without_events(item, frozenset({"e2", "e9"})) == replace(item, outbox=(first,))
    assert rules.without_events(item, frozenset({"e9"})) is None  # somebody else published them: nothing to write
    assert rules.without_events(None, frozenset({"e1"})) is None


def test_a_refused_publish_comes_back_for_its_ids_once_the_grace_has_passed() -> None:
    asks = [
        ask("m1", attempt=3, context={"o": 1}, since=SINCE),
        ask("m1", attempt=0, since=SINCE - timedelta(hours=2), record="r2"),  # the same id again: once
        ask("m2", attempt=1, since=SINCE - timedelta(hours=1), own="b"),
        ask("x1", provider=Provider.WWT, kind="reference", attempt=0, since=NOW),
    ]
    assert rules.publish_later(rnd(), asks) == [
        (TrackRequest("id", ("m1", "m2"), attempt=3, since=SINCE - timedelta(hours=1)), 361, [asks[0], asks[2]]),
        (TrackRequest("reference", ("x1",), since=NOW), 361, [asks[3]]),
    ]


def test_a_refused_publish_for_many_ids_comes_back_in_messages_of_100() -> None:
    asks = [ask(f"m{n:03}", since=SINCE + timedelta(seconds=n)) for n in range(201)]
    messages = rules.publish_later(rnd(), asks)
    assert [(len(message.ids), message.since, delay, len(part)) for message, delay, part in messages] == [
        (100, SINCE, 361, 100),
        (100, SINCE + timedelta(seconds=100), 361, 100),
        (1, SINCE + timedelta(seconds=200), 361, 1),
    ]
    assert [message_id for message, _, _ in messages for message_id in message.ids] == [f"m{n:03}" for n in range(201)]


# ---- one chain follows an open id ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("item", "message_chain", "expected"),
    [
        (None, None, True),  # never seen: this message takes it
        (tracked(report(Status.DELIVERED, True)), None, False),  # final: never asked again
        (tracked(report(Status.DELIVERED, True), chain=OWN), OWN, False),  # final, whatever chain asks
        (tracked(report()), None, True),  # open, unclaimed
        (tracked(report(), chain=OWN, next_check_at=NOW), None, True),  # this very record claimed it before a crash
        (tracked(report(), chain=OWN, next_check_at=NOW), "third", True),  # ...whatever chain its body names
        (tracked(report(), chain=OTHER, next_check_at=NOW), OTHER, True),  # the chain's own re-check
        (tracked(report(), chain=OTHER, next_check_at=NOW), "third", False),  # a duplicate or orphaned re-check
        (tracked(report(), chain=OTHER, next_check_at=NOW - timedelta(minutes=30)), None, False),  # a sender duplicate
        (tracked(report(), chain=OTHER, next_check_at=NOW - timedelta(minutes=30, seconds=1)), None, True),  # the chain was lost
        (tracked(report(), chain=OTHER, next_check_at=NOW - timedelta(minutes=31)), "third", False),  # not by a re-check
        (tracked(report(), chain=OTHER), None, True),  # a chain with no due time cannot be waited for
        (answerless(chain=OTHER, next_check_at=NOW), None, False),  # no answer yet, but followed all the same
        (answerless(chain=OTHER, next_check_at=NOW), OTHER, True),
    ],
)
def test_exactly_one_chain_follows_an_open_id(item: Tracked | None, message_chain: str | None, expected: bool) -> None:
    assert rules.follows(rnd(), ask(chain=message_chain), item) is expected


def test_one_ask_per_id_in_the_batchs_order_and_none_for_ids_not_followed() -> None:
    stored = {
        key("m1"): tracked(report(), chain=OTHER, next_check_at=NOW),  # another chain follows it
        key("m2"): tracked(report(Status.DELIVERED, True, message_id="m2")),  # final
    }
    asks = [ask("m3", record="r1"), ask("m1", record="r1"), ask("m2", record="r2"), ask("m4", record="r2"), ask("m3", record="r2")]
    assert rules.choose(rnd(), asks, stored) == [asks[0], asks[3]]


def test_of_several_asks_the_furthest_recheck_goes_on_with_the_first_context_given() -> None:
    asks = [
        ask(record="s1", own="s1"),
        ask(record="r1", own="r1", chain="c1", attempt=2),
        ask(record="r2", own="r2", chain="c2", attempt=5),
        ask(record="r3", own="r3", chain="c3", attempt=5),  # as far: the first of them
        ask(record="s2", own="s2", context={"o": 2}),
        ask(record="s3", own="s3", context={"o": 3}),
    ]
    assert rules.choose(rnd(), asks, {}) == [replace(asks[2], context={"o": 2})]


def test_the_chains_own_recheck_goes_before_any_other() -> None:
    # OTHER's check is long overdue, so senders' messages may take the id over; this record claimed it once
    # (a redelivery after a crash); but OTHER's own re-check arrived: it goes on.
    item = tracked(report(), chain=OTHER, next_check_at=NOW - timedelta(hours=1))
    asks = [
        ask(record="s1", own="s1", context={"o": 1}),
        ask(record="r1", own=OTHER, chain="older", attempt=9, context={"o": 9}),
        ask(record="r2", own="r2", chain=OTHER, attempt=1),
    ]
    assert rules.choose(rnd(), asks, {key(): item}) == [replace(asks[2], context={"o": 1})]


def test_the_ask_that_goes_on_keeps_its_own_context() -> None:
    asks = [ask(record="s1", own="s1", context={"o": 1}), ask(record="r1", own="r1", chain="c1", attempt=1, context={"o": 9})]
    assert rules.choose(rnd(), asks, {}) == [asks[1]]


def test_of_senders_messages_the_first_goes_on_with_its_own_context() -> None:
    asks = [ask(record="s1", own="s1", context={"o": 1}), ask(record="s2", own="s2", context={"o": 2})]
    assert rules.choose(rnd(), asks, {key(): tracked(report())}) == [asks[0]]
    assert rules.choose(rnd(), [ask(record="s1"), ask(record="s2")], {}) == [ask(record="s1")]  # no context at all


# ---- ids whose window has closed are settled, the others asked ------------------------------------------------
def test_an_id_is_settled_exactly_when_its_window_ends() -> None:
    stored = {key(): tracked(report(at=SINCE))}
    assert rules.triage(rnd(now=SINCE + HOURS_72 - timedelta(seconds=1)), [ask()], stored) == ({}, [ask()])
    end = SINCE + HOURS_72
    settled = replace(report(at=SINCE), status=Status.UNKNOWN, final=True, details={"query_window_closed": True})
    assert rules.triage(rnd(now=end), [ask()], stored) == ({key(): Verdict(settled, at=end)}, [])


def test_an_id_never_answered_is_settled_by_its_own_tracking_start() -> None:
    # No item: the ask's start. An answerless item: the item's, not this (newer) message's.
    chosen = [ask("m1", since=NOW - HOURS_72), ask("m2", since=NOW), ask("m3", since=NOW)]
    stored = {key("m2"): answerless("m2", since=NOW - HOURS_72), key("m3"): answerless("m3", since=NOW - HOURS_72 + timedelta(seconds=1))}
    settled, to_check = rules.triage(rnd(), chosen, stored)
    assert settled == {
        key("m1"): Verdict(rules.never_answered(key("m1"), NOW), at=NOW),
        key("m2"): Verdict(rules.never_answered(key("m2"), NOW), at=NOW),
    }
    assert to_check == [chosen[2]]


def test_triage_reads_each_stored_items_window_and_keeps_the_order() -> None:
    sent_0 = Report(Provider.OPENMARKET, "T1", Status.SENT, False, ProviderStatus("0", None), checked_at=SINCE)
    # T1 was tracked six days ago (its own tracked_since, not this message's): its window has closed.
    old = Tracked(key("T1", Provider.OPENMARKET), sent_0, NOW - timedelta(days=6))
    # T2's provider submit time says it is older than this message too.
    submitted = replace(sent_0, id="T2", submitted_at=NOW - timedelta(days=5))
    older = Tracked(key("T2", Provider.OPENMARKET), submitted, NOW)
    chosen = [ask(ticket, provider=Provider.OPENMARKET, since=NOW) for ticket in ("T4", "T1", "T2", "T3")]
    settled, to_check = rules.triage(rnd(Provider.OPENMARKET), chosen, {old.key: old, older.key: older})
    assert to_check == [chosen[0], chosen[3]]
    closed = {"query_window_closed": True}
    assert settled == {
        old.key: Verdict(replace(sent_0, status=Status.DELIVERED, final=True, details=closed), at=NOW),  # OpenMarket: a last code 0
        older.key: Verdict(replace(submitted, status=Status.DELIVERED, final=True, details=closed), at=NOW),
    }


# ---- what an answer means ---------------------------------------------------------------------------------
def test_a_failed_lookup_stores_nothing_and_keeps_the_id_open() -> None:
    assert rules.read_answer(rnd(), tracked(report()), LookupFailed("provider_unavailable")) == Verdict(None)
    assert rules.read_answer(rnd(), None, LookupFailed("provider_timeout")) == Verdict(None)


def test_not_found_before_the_message_is_known_is_stored_open() -> None:
    answer = report(Status.NOT_FOUND, final=True, code="not_found")
    for item in (None, answerless(), tracked(report(Status.NOT_FOUND, code="not_found"))):
        assert rules.read_answer(rnd(), item, answer) == Verdict(replace(answer, final=False))


def test_not_found_after_the_message_was_known() -> None:
    answer = Report(Provider.OPENMARKET, "T1", Status.NOT_FOUND, True, ProviderStatus("711", None), checked_at=NOW)
    sent_0 = Report(Provider.OPENMARKET, "T1", Status.SENT, False, ProviderStatus("0", None), checked_at=SINCE)
    aged_out = rules.read_answer(rnd(Provider.OPENMARKET), tracked(sent_0), answer)
    # OpenMarket forgets tickets after its window: the last answer (code 0) is settled, a delivery
    assert aged_out == Verdict(replace(sent_0, status=Status.DELIVERED, final=True, details={"query_window_closed": True}), at=NOW)
    # Wooxy does not forget: a known message briefly not found is a glitch, nothing is stored
    assert rules.read_answer(rnd(), tracked(report()), report(Status.NOT_FOUND, True)) == Verdict(None)


def test_an_answer_is_taken_as_it_is() -> None:
    answer = report(Status.DELIVERED, True)
    assert rules.read_answer(rnd(), tracked(report()), answer) == Verdict(answer)
    assert rules.read_answer(rnd(), answerless(), report()) == Verdict(report())


# ---- when an open id is checked next -------------------------------------------------------------------
@pytest.mark.parametrize(("attempt", "wait"), [(0, 30), (1, 60), (2, 120), (3, 240), (4, 480), (5, 900), (6, 1800), (7, 3600), (50, 3600)])
def test_open_ids_are_checked_again_on_the_default_backoff(attempt: int, wait: int) -> None:
    assert rules.next_check(rnd(), ask(attempt=attempt), tracked(report())) == NOW + timedelta(seconds=wait)


def test_a_custom_schedule_sets_the_next_check() -> None:
    assert rules.next_check(rnd(delays=(1, 1, 2)), ask(attempt=2), tracked(report())) == NOW + timedelta(seconds=2)


def test_the_next_check_is_never_after_the_window_end_and_never_sooner_than_a_second() -> None:
    assert rules.next_check(rnd(), ask(), tracked(report(), since=NOW - HOURS_72 + timedelta(seconds=10))) == NOW + timedelta(seconds=10)
    closed_now = tracked(report(), since=NOW - HOURS_72)
    assert rules.next_check(rnd(), ask(), closed_now) == NOW + timedelta(seconds=1)
    # the window by the report's own submit time
    early = tracked(report(submitted_at=NOW - HOURS_72 + timedelta(seconds=10)))
    assert rules.next_check(rnd(), ask(), early) == NOW + timedelta(seconds=10)
    assert rules.next_check(rnd(), ask(), answerless(since=NOW - HOURS_72 + timedelta(seconds=5))) == NOW + timedelta(seconds=5)


# ---- the item written --------------------------------------------------------------------------------------
def test_a_first_answer_is_stored_with_context_chain_event_and_expiry() -> None:
    decided = rules.next_item(rnd(), ask(context={"order": 7}), Verdict(report()), None)
    event = {"report": report().to_dict(), "previous_status": None, "context": {"order": 7}, "event_id": "wooxy#id#m1#1"}
    assert decided == ItemChange(
        Tracked(
            key(),
            report(),
            SINCE,
            (HistoryEntry("sent", "sent", "2026-11-29T10:00:00Z"),),
            context={"order": 7},
            chain=OWN,
            next_check_at=NOW + timedelta(seconds=30),
            outbox=(event,),
            outbox_at=NOW,
            expires_at=at(SINCE + HOURS_72 + RETENTION),  # the window end + 30 days
        ),
        event,
    )


def test_a_final_answer_releases_the_chain_and_expires_30_days_from_now() -> None:
    current = tracked(report(at=SINCE), chain=OWN, next_check_at=NOW, version=4, context={"o": 1})
    decided = rules.next_item(rnd(), ask(), Verdict(report(Status.DELIVERED, True, code="delivered")), current)
    assert (decided.item.chain, decided.item.next_check_at, decided.item.expires_at) == (None, None, at(NOW + RETENTION))
    assert (decided.event["previous_status"], decided.event["event_id"], decided.event["context"]) == ("sent", "wooxy#id#m1#5", {"o": 1})
    assert [entry.status for entry in decided.item.history] == ["sent", "delivered"]
    assert (decided.item.outbox, decided.item.outbox_at) == ((decided.event,), NOW)


def test_a_stale_lower_answer_changes_nothing_but_the_chain() -> None:
    current = tracked(report(at=NOW), next_check_at=SINCE)
    decided = rules.next_item(rnd(), ask(), Verdict(report(Status.PENDING, code="queued")), current)
    expected = replace(current, chain=OWN, next_check_at=NOW + timedelta(seconds=30), expires_at=at(SINCE + HOURS_72 + RETENTION))
    assert decided == ItemChange(expected, None)


def test_the_same_status_again_is_written_with_no_event() -> None:
    current = tracked(report(at=SINCE), chain=OWN)
    decided = rules.next_item(rnd(), ask(attempt=1), Verdict(report(at=NOW)), current)
    assert (decided.item.report, decided.item.outbox, decided.event) == (report(at=NOW), (), None)
    assert decided.item.next_check_at == NOW + timedelta(seconds=60)


def test_a_failed_lookup_of_a_new_id_writes_it_answerless_with_its_chain() -> None:
    decided = rules.next_item(rnd(), ask(context={"o": 1}, attempt=2), Verdict(None), None)
    expected = Tracked(
        key(),
        None,
        SINCE,
        context={"o": 1},
        chain=OWN,
        next_check_at=NOW + timedelta(seconds=120),
        expires_at=at(SINCE + HOURS_72 + RETENTION),
    )
    assert decided == ItemChange(expected, None)


def test_a_failed_lookup_of_a_stored_id_keeps_its_answer_and_moves_the_chain() -> None:
    current = tracked(report(at=SINCE), chain=OTHER, next_check_at=NOW - timedelta(hours=1), context={"o": 1})  # a lost chain
    decided = rules.next_item(rnd(), ask(attempt=2), Verdict(None), current)
    expected = replace(current, chain=OWN, next_check_at=NOW + timedelta(seconds=120), expires_at=at(SINCE + HOURS_72 + RETENTION))
    assert decided == ItemChange(expected, None)


def test_the_first_answer_of_an_answerless_item_keeps_its_chain_context_and_start() -> None:
    current = answerless(since=SINCE - timedelta(hours=2), context={"o": 1}, chain=OWN, next_check_at=NOW)
    later = ask(context={"o": 2}, since=NOW, attempt=3)  # a later message for the id: its context and start are not taken
    decided = rules.next_item(rnd(), later, Verdict(report()), current)
    event = {"report": report().to_dict(), "previous_status": None, "context": {"o": 1}, "event_id": "wooxy#id#m1#2"}
    assert decided == ItemChange(
        replace(
            current,
            report=report(),
            history=(HistoryEntry("sent", "sent", "2026-11-29T10:00:00Z"),),
            next_check_at=NOW + timedelta(seconds=240),
            outbox=(event,),
            outbox_at=NOW,
            expires_at=at(SINCE - timedelta(hours=2) + HOURS_72 + RETENTION),
        ),
        event,
    )


def test_an_answerless_item_another_chain_follows_is_left_alone() -> None:
    current = answerless(chain=OTHER, next_check_at=NOW)
    assert rules.next_item(rnd(), ask(), Verdict(report()), current) is None
    assert rules.next_item(rnd(), ask(), Verdict(None), current) is None


def test_a_write_is_decided_again_on_what_another_writer_stored() -> None:
    verdict = Verdict(report())
    assert rules.next_item(rnd(), ask(), verdict, tracked(report(Status.DELIVERED, True))) is None  # it became final
    assert rules.next_item(rnd(), ask(), verdict, tracked(report(), chain=OTHER, next_check_at=NOW)) is None  # claimed meanwhile


def test_a_known_message_briefly_not_found_keeps_its_answer() -> None:
    current = tracked(report(at=SINCE))
    verdict = rules.read_answer(rnd(), current, report(Status.NOT_FOUND, True, code="not_found"))
    decided = rules.next_item(rnd(), ask(), verdict, current)
    assert (decided.item.report, decided.item.history, decided.event) == (current.report, current.history, None)


def test_an_items_expiry_and_next_check_follow_its_reports_window() -> None:
    # Wooxy submitted the message 72 h minus 10 s ago: its window ends in 10 s, before the 30 s backoff.
    early = report(submitted_at=NOW - HOURS_72 + timedelta(seconds=10))
    decided = rules.next_item(rnd(), ask(), Verdict(early), None)
    assert decided.item.key == key()
    assert (decided.item.next_check_at, decided.item.expires_at) == (
        NOW + timedelta(seconds=10),
        at(NOW + timedelta(seconds=10) + RETENTION),
    )


def test_a_settled_answer_is_dated_when_the_window_closed() -> None:
    current = tracked(report(at=SINCE))
    closed = rules.settle(rules.window_for(Provider.WOOXY, HOURS_72), current.report)
    decided = rules.next_item(rnd(), ask(), Verdict(closed, at=NOW), current)
    assert decided.item.history[-1] == HistoryEntry("unknown", "sent", "2026-11-29T10:00:00Z")
    assert (decided.item.final, decided.item.chain, decided.event["report"]["status"]) == (True, None, "unknown")


def test_an_id_never_answered_is_written_final() -> None:
    verdict = Verdict(rules.never_answered(key(), NOW), at=NOW)
    decided = rules.next_item(rnd(), ask(), verdict, answerless(since=NOW - HOURS_72))
    assert (decided.item.report, decided.item.chain, decided.item.next_check_at) == (verdict.report, None, None)
    assert decided.event["previous_status"] is None  # its first answer


# ---- the re-check messages -----------------------------------------------------------------------------------
def claimed(a: Ask, due: datetime, since: datetime = SINCE) -> tuple[Ask, Tracked]:
    return a, Tracked(a.key, report(message_id=a.key.id), since, chain=a.own_chain, next_check_at=due)


def test_ids_due_together_after_the_same_check_travel_in_one_message_each_with_its_chain() -> None:
    due = NOW + timedelta(seconds=480)
    first, second = ask("m1", own="c1", attempt=4, context={"o": 1}), ask("m2", own="c2", attempt=4, record="r2")
    messages = rules.recheck_messages(rnd(), [claimed(first, due), claimed(second, due, since=SINCE - timedelta(hours=1))])
    # the earliest start: no id's window is kept open longer than its own (each item keeps its own start)
    assert messages == [
        (TrackRequest("id", ("m1", "m2"), attempt=5, chains=("c1", "c2"), since=SINCE - timedelta(hours=1)), 480, [first, second])
    ]


def test_ids_due_at_other_times_after_other_checks_or_of_another_kind_travel_apart() -> None:
    due = NOW + timedelta(seconds=60)
    a, b = ask("m1", attempt=1), ask("m2", attempt=2)
    c = ask("m3", attempt=1)
    d = ask("x1", provider=Provider.WWT, kind="reference", attempt=1)
    messages = rules.recheck_messages(rnd(), [claimed(a, due), claimed(b, due), claimed(c, due + timedelta(seconds=1)), claimed(d, due)])
    assert [(m.kind, m.ids, m.attempt, delay) for m, delay, _ in messages] == [
        ("id", ("m1",), 2, 60),
        ("id", ("m2",), 3, 60),
        ("id", ("m3",), 2, 61),
        ("reference", ("x1",), 2, 60),
    ]


def test_a_recheck_carries_at_most_100_ids() -> None:
    due = NOW + timedelta(seconds=30)
    pairs = [claimed(ask(f"m{n:03}", own=f"c{n}"), due, since=SINCE + timedelta(seconds=n)) for n in range(201)]
    messages = rules.recheck_messages(rnd(), pairs)
    assert [(len(m.ids), m.since, len(part)) for m, _, part in messages] == [
        (100, SINCE, 100),
        (100, SINCE + timedelta(seconds=100), 100),
        (1, SINCE + timedelta(seconds=200), 1),
    ]
    assert [chain for m, _, _ in messages for chain in m.chains] == [f"c{n}" for n in range(201)]
    assert [a for _, _, part in messages for a in part] == [a for a, _ in pairs]


def test_a_recheck_due_beyond_the_sqs_maximum_is_chained_through_not_before() -> None:
    (exact,) = rules.recheck_messages(rnd(), [claimed(ask(), NOW + timedelta(seconds=900))])
    assert (exact[0].not_before, exact[1]) == (None, 900)
    (longer,) = rules.recheck_messages(rnd(), [claimed(ask(), NOW + timedelta(seconds=901))])
    assert (longer[0].not_before, longer[1]) == (NOW + timedelta(seconds=901), 900)


def test_a_claimed_id_with_no_due_time_is_checked_again_at_once() -> None:
    a = ask()
    (message,) = rules.recheck_messages(rnd(), [(a, Tracked(a.key, report(), SINCE, chain=OWN))])
    assert message == (TrackRequest("id", ("m1",), attempt=1, chains=(OWN,), since=SINCE), 0, [a])


def test_a_new_event_leaves_the_older_ones_in_the_outbox_as_old_as_they_are() -> None:
    # EventBridge refused e1 when it was written (t0): it stays in the outbox, and a message on the re-check queue
    # comes back for the id once the grace has passed. Meanwhile the chain's next check makes the id final and
    # publishes its own event e2 at once. When the message comes back, e1 must still be stale: the id is final,
    # no other message will ever come for it, so e1 would never be published.
    t0 = NOW - timedelta(minutes=6, seconds=1)
    e1 = {"event_id": "wooxy#id#m1#1"}
    current = tracked(
        report(Status.PENDING, code="queued", at=t0), chain=OWN, next_check_at=t0 + timedelta(seconds=30), outbox=(e1,), outbox_at=t0
    )
    delivered = report(Status.DELIVERED, True, code="delivered", at=t0 + timedelta(seconds=30))
    decided = rules.next_item(rnd(now=t0 + timedelta(seconds=30)), ask(attempt=1), Verdict(delivered), current)
    assert (decided.item.outbox, decided.item.outbox_at) == ((e1, decided.event), t0)
    published = rules.without_events(decided.item, frozenset({decided.event["event_id"]}))
    assert rules.stale_events(rnd(), [ask()], {key(): published}) == [(key(), e1)]


def test_events_found_with_no_outbox_date_are_dated_by_the_next_write() -> None:
    # Undated, they could never become stale: only a redelivery would publish them.
    current = tracked(report(Status.PENDING, code="queued", at=SINCE), chain=OWN, outbox=({"event_id": "wooxy#id#m1#1"},))
    decided = rules.next_item(rnd(), ask(), Verdict(report()), current)
    assert (len(decided.item.outbox), decided.item.outbox_at) == (2, NOW)


# ---- events published by the previous check, cleared by this one ------------------------------------------------------
def event(message_id: str, version: int) -> dict:
    return {"event_id": f"wooxy#id#{message_id}#{version}", "report": {}, "previous_status": None, "context": None}


def test_a_recheck_gives_each_id_only_its_own_published_events() -> None:
    request = TrackRequest(kind="id", ids=("m1", "m10"), attempt=1, chains=(OWN, OWN), published=("wooxy#id#m1#1", "wooxy#id#m10#2"))
    asks = rules.asks_of(Provider.WOOXY, request, record="r", own_chain="new", enqueued_at=NOW, redelivered=False)
    assert [(a.key.id, a.published) for a in asks] == [("m1", frozenset({"wooxy#id#m1#1"})), ("m10", frozenset({"wooxy#id#m10#2"}))]


def test_published_events_are_not_stale_and_leave_the_outbox_with_the_next_write() -> None:
    old = NOW - rules.OUTBOX_GRACE - timedelta(minutes=1)
    item = tracked(report(), chain=OWN, next_check_at=NOW, outbox=(event("m1", 1), event("m1", 2)), outbox_at=old)
    chained = replace(ask(chain=OWN, attempt=1), published=frozenset({"wooxy#id#m1#1"}))
    # the one the previous check published is not published again; the other, left behind, is
    assert rules.stale_events(rnd(), [chained], {key(): item}) == [(key(), event("m1", 2))]
    change = rules.next_item(rnd(), chained, Verdict(None), item)
    assert change is not None
    assert change.item.outbox == (event("m1", 2),)
    assert change.item.outbox_at == old


def test_the_recheck_carries_the_events_published_for_its_own_ids() -> None:
    due = NOW + timedelta(seconds=30)
    items = [(ask(n, own=f"c{n}"), tracked(report(message_id=n), chain=f"c{n}", next_check_at=due)) for n in ("m1", "m2")]
    ((message, delay, carried),) = rules.recheck_messages(rnd(), items, {key("m1"): {"wooxy#id#m1#1"}, key("m9"): {"wooxy#id#m9#1"}})
    assert (message.ids, message.published, delay) == (("m1", "m2"), ("wooxy#id#m1#1",), 30)
    assert message.to_body()["published"] == ["wooxy#id#m1#1"]
    assert [a.key.id for a in carried] == ["m1", "m2"]


def test_two_asks_for_one_id_spare_the_events_either_published() -> None:
    # A sender's duplicate and a re-check in one batch: both asks' published events are left out, not only one's.
    old = NOW - rules.OUTBOX_GRACE - timedelta(minutes=1)
    item = tracked(report(), chain=OWN, outbox=(event("m1", 1), event("m1", 2), event("m1", 3)), outbox_at=old)
    first = replace(ask(chain=OWN, attempt=1), published=frozenset({"wooxy#id#m1#1"}))
    second = replace(ask(chain=OWN, attempt=1), published=frozenset({"wooxy#id#m1#2"}))
    assert rules.stale_events(rnd(), [first, second], {key(): item}) == [(key(), event("m1", 3))]


def test_a_recheck_whose_item_is_gone_writes_it_anew() -> None:
    # The item expired (TTL) while the re-check waited: its published events have nothing to leave, the id is
    # written again from this check's answer.
    chained = replace(ask(chain=OWN, attempt=1), published=frozenset({"wooxy#id#m1#1"}))
    change = rules.next_item(rnd(), chained, Verdict(report()), None)
    assert change is not None
    assert change.item.report == report()
    assert change.event is not None
    assert change.event["event_id"] == "wooxy#id#m1#1"

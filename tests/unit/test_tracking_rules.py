"""The queue path's rules, without AWS: given stored items, answers and the time, the writes, events and next check.

Expected values come from the contract (docs/queue.md): the default schedule 30 s, 1, 2, 4, 8, 15, 30 min, then
hourly; OpenMarket's 5-day window; a chain is lost after 30 minutes overdue; outbox events are stale after 2 min.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from sms_status import tracking_rules as rules
from sms_status.model import Outcome, Provider, ProviderStatus, Report, Status
from sms_status.store import HistoryEntry, Tracked, TrackKey
from sms_status.tracking_rules import Check, LookupFailed, Result, TrackRequest, Window

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
SINCE = NOW - timedelta(hours=1)
HOURS_72 = timedelta(hours=72)
OWN = "own-chain"
OTHER = "other-chain"


def report(status: Status = Status.SENT, final: bool = False, *, id: str = "m1", code: str = "sent", at: datetime = NOW, **fields):
    return Report(Provider.WOOXY, id, status, final, ProviderStatus(code, None), checked_at=at, **fields)


def tracked(rep: Report, *, chain: str | None = None, next_check_at: datetime | None = None, version: int = 1, **fields) -> Tracked:
    key = TrackKey(rep.provider, "id", rep.id)
    history = (HistoryEntry(str(rep.status), rep.provider_status.code, rep.checked_at.isoformat()),)
    return Tracked(key, rep, SINCE, history, chain=chain, next_check_at=next_check_at, version=version, **fields)


def check(
    ids: tuple[str, ...] = ("m1",),
    *,
    provider: Provider = Provider.WOOXY,
    chain: str | None = None,
    attempt: int = 0,
    redelivered: bool = False,
    delays: tuple[int, ...] = rules.DEFAULT_RECHECK_DELAYS,
    not_before: datetime | None = None,
    context: dict | None = None,
) -> Check:
    request = TrackRequest("id", ids, context=context, attempt=attempt, chain=chain, not_before=not_before)
    return Check(provider, rules.window_for(provider, HOURS_72), request, OWN, SINCE, NOW, delays, redelivered)


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


WINDOWS = [(Provider.OPENMARKET, timedelta(days=5)), (Provider.WOOXY, HOURS_72), (Provider.WWT, HOURS_72)]


@pytest.mark.parametrize(("provider", "length"), WINDOWS)
def test_each_provider_has_its_window(provider: Provider, length: timedelta) -> None:
    # OpenMarket: its documented 5 days whatever QUERY_WINDOW_HOURS says; the others: QUERY_WINDOW_HOURS
    assert rules.window_for(provider, HOURS_72).end(None, SINCE) == SINCE + length
    assert rules.window_for(provider, HOURS_72).forgets_old_messages is (provider is Provider.OPENMARKET)


def test_an_id_is_settled_exactly_when_its_window_ends() -> None:
    stored = {"m1": tracked(report())}
    just_before = check()
    just_before = Check(**{**_fields(just_before), "now": SINCE + HOURS_72 - timedelta(seconds=1)})
    at_end = Check(**{**_fields(just_before), "now": SINCE + HOURS_72})
    assert rules.triage(just_before, stored) == rules.Triage({}, ["m1"])
    settled = rules.triage(at_end, stored).settled["m1"]
    assert (settled.report.status, settled.report.final, settled.at) == (Status.UNKNOWN, True, SINCE + HOURS_72)


def _fields(c: Check) -> dict:
    return {name: getattr(c, name) for name in Check.__slots__}


@pytest.mark.parametrize("provider", list(Provider))
def test_a_message_never_found_within_the_window_settles_as_not_found(provider: Provider) -> None:
    open_not_found = Report(provider, "x1", Status.NOT_FOUND, False, ProviderStatus("not_found", None))
    settled = rules.settle(rules.window_for(provider, HOURS_72), open_not_found)
    assert (settled.status, settled.final, settled.details) == (Status.NOT_FOUND, True, {"query_window_closed": True})


def test_an_id_never_answered_settles_as_unknown_final() -> None:
    settled = rules.never_answered(Provider.WWT, "9", NOW)
    assert (settled.provider, settled.id, settled.status, settled.final) == (Provider.WWT, "9", Status.UNKNOWN, True)
    assert settled.provider_status == ProviderStatus("query_window_closed", "no usable answer before the query window closed")
    assert (settled.checked_at, settled.details) == (NOW, {"query_window_closed": True})


def test_openmarket_code_0_is_a_delivery_once_its_window_closes_others_become_unknown() -> None:
    # OpenMarket: code 0 ("Message sent") is a success when it is the last receipt. Wooxy/WWT: never a guess.
    sent_0 = Report(Provider.OPENMARKET, "T1", Status.SENT, False, ProviderStatus("0", "Message sent"))
    buffered = Report(Provider.OPENMARKET, "T1", Status.SENT, False, ProviderStatus("3", None))
    openmarket = rules.window_for(Provider.OPENMARKET, HOURS_72)
    assert (rules.settle(openmarket, sent_0).status) is Status.DELIVERED
    assert rules.settle(openmarket, buffered).status is Status.UNKNOWN
    wooxy = rules.window_for(Provider.WOOXY, HOURS_72)
    assert rules.settle(wooxy, report(code="0")).status is Status.UNKNOWN
    delivered = report(Status.DELIVERED, final=True)
    assert rules.settle(wooxy, delivered).status is Status.DELIVERED  # a final answer stays


# ---- the message's own time fields --------------------------------------------------------------------
def test_internal_times_are_held_to_what_our_own_messages_can_carry() -> None:
    enqueued = NOW - timedelta(seconds=10)
    request = TrackRequest("id", ("m1",), since=NOW + timedelta(days=9), not_before=NOW + timedelta(days=9))
    held = rules.held_request(request, enqueued, (30, 60))
    assert (held.since, held.not_before) == (enqueued, enqueued + timedelta(seconds=60))
    earlier = TrackRequest("id", ("m1",), since=SINCE, not_before=NOW)
    assert rules.held_request(earlier, enqueued, (30, 60)) == earlier


def test_a_wait_longer_than_sqs_can_delay_is_one_more_hop() -> None:
    hour, ninety = check(not_before=NOW + timedelta(hours=1)), check(not_before=NOW + timedelta(seconds=90.2))
    assert rules.chained_wait(hour) == (hour.request, 900)
    assert rules.chained_wait(ninety) == (ninety.request, 91)
    assert rules.chained_wait(check(not_before=NOW + timedelta(seconds=0.9))) is None  # due: checked now
    assert rules.chained_wait(check(not_before=NOW - timedelta(hours=1))) is None
    assert rules.chained_wait(check()) is None


# ---- stale outbox events go out first -------------------------------------------------------------------
def test_outbox_events_older_than_the_grace_are_stale_and_a_redelivery_takes_them_all() -> None:
    event = {"event_id": "wooxy#id#m1#1"}
    old = tracked(report(), outbox=(event,), outbox_at=NOW - timedelta(minutes=2))
    young = tracked(report(id="m2"), outbox=({"event_id": "wooxy#id#m2#1"},), outbox_at=NOW - timedelta(seconds=119))
    assert rules.stale_events(check(("m1", "m2")), {"m1": old, "m2": young}) == [("m1", event)]
    everything = rules.stale_events(check(("m1", "m2"), redelivered=True), {"m1": old, "m2": young})
    assert everything == [("m1", event), ("m2", {"event_id": "wooxy#id#m2#1"})]
    assert rules.stale_events(check(redelivered=True), {"m1": tracked(report())}) == []


def test_publishing_clears_only_the_published_events() -> None:
    first, second = {"event_id": "e1"}, {"event_id": "e2"}
    item = tracked(report(), outbox=(first, second), outbox_at=NOW)
    assert rules.without_events(item, frozenset({"e1"})).outbox == (second,)
    assert rules.without_events(item, frozenset({"e1"})).outbox_at == NOW
    cleared = rules.without_events(item, frozenset({"e1", "e2"}))
    assert (cleared.outbox, cleared.outbox_at) == ((), None)
    assert rules.without_events(item, frozenset({"e9"})) is None  # somebody else published them: nothing to write
    assert rules.without_events(None, frozenset({"e1"})) is None


def test_a_refused_publish_comes_back_for_its_ids_after_the_grace() -> None:
    message, delay = rules.publish_later(check(("m1", "m2"), attempt=3, context={"o": 1}), ["m1", "m1", "m2"])
    assert message == TrackRequest("id", ("m1", "m2"), context={"o": 1}, attempt=3, since=SINCE)
    assert delay == 121


# ---- one chain follows an open id ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("item", "message_chain", "expected"),
    [
        (None, None, True),  # never seen: this message takes it
        (tracked(report(Status.DELIVERED, True)), None, False),  # final: never asked again
        (tracked(report()), None, True),  # open, unclaimed
        (tracked(report(), chain=OWN), None, True),  # this very record claimed it before a crash
        (tracked(report(), chain=OTHER, next_check_at=NOW), OTHER, True),  # the chain's own re-check
        (tracked(report(), chain=OTHER, next_check_at=NOW), "third", False),  # a duplicate or orphaned re-check
        (tracked(report(), chain=OTHER, next_check_at=NOW - timedelta(minutes=30)), None, False),  # a sender duplicate
        (tracked(report(), chain=OTHER, next_check_at=NOW - timedelta(minutes=31)), None, True),  # the chain was lost
        (tracked(report(), chain=OTHER, next_check_at=NOW - timedelta(minutes=31)), "third", False),  # not by a re-check
        (tracked(report(), chain=OTHER), None, True),  # a chain with no due time cannot be waited for
    ],
)
def test_exactly_one_chain_follows_an_open_id(item: Tracked | None, message_chain: str | None, expected: bool) -> None:
    assert rules.follows(check(chain=message_chain), item) is expected


def test_ids_another_chain_follows_are_neither_checked_nor_written() -> None:
    stored = {"m1": tracked(report(), chain=OTHER, next_check_at=NOW), "m2": tracked(report(id="m2"))}
    triaged = rules.triage(check(("m1", "m2", "m3")), stored)
    assert triaged == rules.Triage({}, ["m2", "m3"])
    decision = rules.decide(check(("m1", "m2", "m3")), stored, triaged, {"m2": report(id="m2"), "m3": report(id="m3")})
    assert list(decision.results) == ["m2", "m3"]


# ---- what an answer means ---------------------------------------------------------------------------------
def test_a_failed_lookup_stores_nothing_and_keeps_the_id_open() -> None:
    assert rules.read_answer(check(), tracked(report()), LookupFailed("provider_unavailable")) == Result(None)
    assert rules.read_answer(check(), None, LookupFailed("provider_timeout")) == Result(None)


def test_not_found_before_the_message_is_known_is_stored_open() -> None:
    answer = report(Status.NOT_FOUND, final=True, code="not_found")
    for item in (None, tracked(report(Status.NOT_FOUND, code="not_found"))):
        result = rules.read_answer(check(), item, answer)
        assert (result.report.status, result.report.final) == (Status.NOT_FOUND, False)


def test_not_found_after_the_message_was_known() -> None:
    answer = Report(Provider.OPENMARKET, "T1", Status.NOT_FOUND, True, ProviderStatus("711", None), checked_at=NOW)
    known = tracked(Report(Provider.OPENMARKET, "T1", Status.SENT, False, ProviderStatus("0", None), checked_at=SINCE))
    aged_out = rules.read_answer(check(("T1",), provider=Provider.OPENMARKET), known, answer)
    # OpenMarket forgets tickets after its window: the last answer (code 0) is settled, a delivery
    assert (aged_out.report.status, aged_out.report.final, aged_out.at) == (Status.DELIVERED, True, NOW)
    # Wooxy does not forget: a known message briefly not found is a glitch, nothing is stored
    assert rules.read_answer(check(), tracked(report()), report(Status.NOT_FOUND, True)) == Result(None)


def test_an_answer_is_taken_as_it_is() -> None:
    answer = report(Status.DELIVERED, True)
    assert rules.read_answer(check(), tracked(report()), answer) == Result(answer)


# ---- when the open ids are checked next -------------------------------------------------------------------
@pytest.mark.parametrize(("attempt", "wait"), [(0, 30), (1, 60), (2, 120), (3, 240), (4, 480), (5, 900), (6, 1800), (7, 3600), (50, 3600)])
def test_open_ids_are_checked_again_on_the_default_backoff(attempt: int, wait: int) -> None:
    c = check(attempt=attempt)
    decision = rules.decide(c, {}, rules.Triage({}, ["m1"]), {"m1": report()})
    assert (decision.open, decision.due) == (["m1"], NOW + timedelta(seconds=wait))


def test_an_outage_reschedules_on_the_backoff_like_any_open_id() -> None:
    c = check(("m1", "m2"), attempt=2)
    stored = {"m1": tracked(report())}
    outage = dict.fromkeys(["m1", "m2"], LookupFailed("provider_unavailable"))
    decision = rules.decide(c, stored, rules.Triage({}, ["m1", "m2"]), outage)
    assert (decision.open, decision.due) == (["m1", "m2"], NOW + timedelta(seconds=120))
    # the stored id keeps its answer and records the chain; the new one is not written (nothing to store yet)
    write = rules.next_item(c, decision, "m1", stored["m1"])
    assert (write.item.report, write.item.chain, write.item.next_check_at, write.event) == (stored["m1"].report, OWN, decision.due, None)
    assert rules.next_item(c, decision, "m2", None) is None
    assert rules.owns(c, None, None)  # never stored: it stays with this message, which sends its re-check


def test_the_next_check_is_never_after_the_earliest_window_end_and_never_sooner_than_a_second() -> None:
    near_end = tracked(report(), next_check_at=NOW)
    near_end = Tracked(**{**{n: getattr(near_end, n) for n in Tracked.__slots__}, "tracked_since": NOW - HOURS_72 + timedelta(seconds=10)})
    decision = rules.decide(check(("m1", "m2")), {"m1": near_end}, rules.Triage({}, ["m1", "m2"]), {"m1": report(), "m2": report(id="m2")})
    assert decision.due == NOW + timedelta(seconds=10)
    closed_now = Tracked(**{**{n: getattr(near_end, n) for n in Tracked.__slots__}, "tracked_since": NOW - HOURS_72})
    assert rules.decide(check(), {"m1": closed_now}, rules.Triage({}, ["m1"]), {"m1": report()}).due == NOW + timedelta(seconds=1)


def test_final_answers_need_no_next_check() -> None:
    decision = rules.decide(check(), {}, rules.Triage({}, ["m1"]), {"m1": report(Status.DELIVERED, True)})
    assert (decision.open, decision.due) == ([], None)


def test_results_keep_the_request_order_settled_or_asked() -> None:
    settled = {"m2": Result(report(Status.UNKNOWN, True, id="m2"), at=NOW)}
    decision = rules.decide(check(("m1", "m2", "m3")), {}, rules.Triage(settled, ["m3", "m1"]), {"m1": report(), "m3": report(id="m3")})
    assert list(decision.results) == ["m1", "m2", "m3"]


# ---- the item written --------------------------------------------------------------------------------------
def test_a_first_answer_is_stored_with_context_chain_event_and_expiry() -> None:
    c = check(context={"order": 7})
    decision = rules.decide(c, {}, rules.Triage({}, ["m1"]), {"m1": report()})
    write = rules.next_item(c, decision, "m1", None)
    item = write.item
    assert (item.report.status, item.context, item.chain) == (Status.SENT, {"order": 7}, OWN)
    assert item.next_check_at == NOW + timedelta(seconds=30)
    assert write.event == {
        "report": report().to_dict(),
        "previous_status": None,
        "context": {"order": 7},
        "event_id": "wooxy#id#m1#1",  # the version this write creates
    }
    assert (item.outbox, item.outbox_at) == ((write.event,), NOW)
    assert item.expires_at == int((SINCE + HOURS_72 + timedelta(days=30)).timestamp())  # window end + 30 days


def test_a_final_answer_releases_the_chain_and_expires_30_days_from_now() -> None:
    c = check()
    current = tracked(report(at=SINCE), chain=OWN, next_check_at=NOW, version=4, context={"o": 1})
    decision = rules.decide(c, {"m1": current}, rules.Triage({}, ["m1"]), {"m1": report(Status.DELIVERED, True, code="delivered")})
    write = rules.next_item(c, decision, "m1", current)
    assert (write.item.chain, write.item.next_check_at, write.item.expires_at) == (None, None, int((NOW + timedelta(days=30)).timestamp()))
    assert (write.event["previous_status"], write.event["event_id"], write.event["context"]) == ("sent", "wooxy#id#m1#5", {"o": 1})
    assert [entry.status for entry in write.item.history] == ["sent", "delivered"]


def test_a_stale_lower_answer_changes_nothing_but_the_chain() -> None:
    c = check()
    current = tracked(report(at=NOW))
    decision = rules.decide(c, {"m1": current}, rules.Triage({}, ["m1"]), {"m1": report(Status.PENDING, code="queued")})
    write = rules.next_item(c, decision, "m1", current)
    assert (write.item.report, write.event, write.item.chain) == (current.report, None, OWN)


def test_a_write_is_decided_again_on_what_another_writer_stored() -> None:
    c = check()
    decision = rules.decide(c, {}, rules.Triage({}, ["m1"]), {"m1": report()})
    assert rules.next_item(c, decision, "m1", tracked(report(Status.DELIVERED, True))) is None  # it became final
    taken = tracked(report(), chain=OTHER, next_check_at=NOW)
    assert rules.next_item(c, decision, "m1", taken) is None  # another chain claimed it meanwhile
    assert not rules.owns(c, None, taken)


def test_the_recheck_carries_the_chain_the_next_attempt_and_the_tracking_start() -> None:
    c = check(("m1", "m2"), attempt=4, context={"o": 1})
    message, delay = rules.recheck(c, ["m2"], NOW + timedelta(seconds=480))
    assert message == TrackRequest("id", ("m2",), context={"o": 1}, attempt=5, chain=OWN, since=SINCE)
    assert delay == 480
    long_wait, delay = rules.recheck(c, ["m2"], NOW + timedelta(seconds=3600))
    assert (long_wait.not_before, delay) == (NOW + timedelta(seconds=3600), 900)  # longer than SQS delays: chained


def test_a_custom_window_rule_is_used_when_the_window_closes() -> None:
    closing = Window(timedelta(hours=1), close=lambda r: r.with_status(Outcome(Status.EXPIRED, final=True)))
    settled = rules.settle(closing, report())
    assert (settled.status, settled.final) == (Status.EXPIRED, True)


# ---- boundaries and the data each rule reads (each found by mutation testing) --------------------------------
def test_a_wait_of_exactly_one_second_is_still_a_hop() -> None:
    one_second = check(not_before=NOW + timedelta(seconds=1))
    assert rules.chained_wait(one_second) == (one_second.request, 1)


def test_a_recheck_due_in_exactly_the_sqs_maximum_needs_no_chained_wait() -> None:
    message, delay = rules.recheck(check(), ["m1"], NOW + timedelta(seconds=900))
    assert (message.not_before, delay) == (None, 900)


def test_a_senders_message_has_no_internal_times_to_hold() -> None:
    request = TrackRequest("id", ("m1",))
    assert rules.held_request(request, NOW, (30,)) == request


def test_the_message_body_names_every_field() -> None:
    request = TrackRequest("reference", ("r1",), context={"o": 1}, attempt=2, chain="c", since=SINCE, not_before=NOW)
    assert request.to_body() == {
        "references": ["r1"],
        "attempt": 2,
        "context": {"o": 1},
        "chain": "c",
        "since": "2026-11-29T09:00:00Z",
        "not_before": "2026-11-29T10:00:00Z",
    }
    assert TrackRequest("id", ("m1",)).to_body() == {"ids": ["m1"], "attempt": 0}


def test_a_custom_schedule_sets_the_next_check() -> None:
    decision = rules.decide(check(delays=(1, 1, 2)), {}, rules.Triage({}, ["m1"]), {"m1": report()})
    assert decision.due == NOW + timedelta(seconds=1)


def test_a_known_message_briefly_not_found_keeps_its_answer_through_decide() -> None:
    stored = {"m1": tracked(report())}
    decision = rules.decide(check(), stored, rules.Triage({}, ["m1"]), {"m1": report(Status.NOT_FOUND, True, code="not_found")})
    assert (decision.results["m1"], decision.open) == (Result(None), ["m1"])


def test_the_next_check_is_capped_by_the_answers_own_submit_time() -> None:
    # Wooxy submitted the message 72 h minus 10 s ago: its window ends in 10 s, before the 30 s backoff.
    early = report(submitted_at=NOW - HOURS_72 + timedelta(seconds=10))
    decision = rules.decide(check(), {}, rules.Triage({}, ["m1"]), {"m1": early})
    assert decision.due == NOW + timedelta(seconds=10)
    # ...and, with no answer this time, by the stored report's submit time
    stored = {"m1": tracked(early)}
    decision = rules.decide(check(), stored, rules.Triage({}, ["m1"]), {"m1": LookupFailed("provider_timeout")})
    assert decision.due == NOW + timedelta(seconds=10)


def test_an_items_expiry_follows_its_reports_window() -> None:
    early = report(submitted_at=SINCE - timedelta(hours=5))
    decision = rules.decide(check(), {}, rules.Triage({}, ["m1"]), {"m1": early})
    write = rules.next_item(check(), decision, "m1", None)
    assert write.item.key == TrackKey(Provider.WOOXY, "id", "m1")
    assert write.item.expires_at == int((SINCE - timedelta(hours=5) + HOURS_72 + timedelta(days=30)).timestamp())


def test_a_settled_answer_is_dated_when_the_window_closed() -> None:
    current = tracked(report(at=SINCE))
    settled = {"m1": Result(rules.settle(rules.window_for(Provider.WOOXY, HOURS_72), current.report), at=NOW)}
    decision = rules.decide(check(), {"m1": current}, rules.Triage(settled, []), {})
    write = rules.next_item(check(), decision, "m1", current)
    assert write.item.history[-1] == HistoryEntry("unknown", "sent", "2026-11-29T10:00:00Z")


def test_ownership_is_the_chain_the_write_recorded() -> None:
    assert rules.owns(check(), tracked(report(), chain=OWN), tracked(report()))
    assert not rules.owns(check(), tracked(report(), chain=OTHER), None)


def test_triage_reads_each_stored_items_window() -> None:
    window_passed = Check(**{**_fields(check(("T1", "T2", "T3"), provider=Provider.OPENMARKET)), "since": NOW})
    sent_0 = Report(Provider.OPENMARKET, "T1", Status.SENT, False, ProviderStatus("0", None), checked_at=SINCE)
    # T1 was tracked six days ago (its own tracked_since, not this message's): its window has closed.
    old = Tracked(TrackKey(Provider.OPENMARKET, "id", "T1"), sent_0, NOW - timedelta(days=6))
    # T2's provider submit time says it is older than this message too.
    submitted = replace(sent_0, id="T2", submitted_at=NOW - timedelta(days=5))
    older = Tracked(TrackKey(Provider.OPENMARKET, "id", "T2"), submitted, NOW)
    triaged = rules.triage(window_passed, {"T1": old, "T2": older})
    assert triaged.to_check == ["T3"]
    assert {id: (r.report.id, r.report.status, r.at) for id, r in triaged.settled.items()} == {
        "T1": ("T1", Status.DELIVERED, NOW),  # OpenMarket's rule for a last code 0
        "T2": ("T2", Status.DELIVERED, NOW),
    }


def test_an_id_never_stored_is_settled_by_the_messages_own_window() -> None:
    closed = Check(**{**_fields(check(("m9",))), "since": NOW - HOURS_72})
    (result,) = rules.triage(closed, {}).settled.values()
    assert (result.report.provider, result.report.id, result.report.checked_at, result.at) == (Provider.WOOXY, "m9", NOW, NOW)

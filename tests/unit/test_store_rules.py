"""The rule that statuses never go backwards (store.apply_report) and what a stored report may hold
(store.bounded): pure, no AWS."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from sms_status.model import Provider, ProviderStatus, Report, Status
from sms_status.store import Applied, HistoryEntry, Tracked, TrackKey, apply_report, bounded, rank

KEY = TrackKey(Provider.WOOXY, "id", "m1")
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def report(status: Status, final: bool = False, code: str | None = None, at: int = 0) -> Report:
    return Report(Provider.WOOXY, "m1", status, final, ProviderStatus(code or str(status)), checked_at=T0 + timedelta(seconds=at))


def stored(*reports: Report):
    item = None
    for r in reports:
        applied = apply_report(item, r, key=KEY, tracked_since=T0)
        assert applied is not None
        item = applied.item
    return item


def test_the_first_answer_is_a_change_from_nothing() -> None:
    applied = apply_report(None, report(Status.PENDING), key=KEY, tracked_since=T0)
    assert applied.changed
    assert applied.previous_status is None
    assert [h.status for h in applied.item.history] == ["pending"]


def test_forward_moves_are_changes() -> None:
    item = stored(report(Status.PENDING), report(Status.SENT, at=10))
    applied = apply_report(item, report(Status.DELIVERED, final=True, at=20), key=KEY, tracked_since=T0)
    assert applied.changed
    assert applied.previous_status is Status.SENT
    assert [h.status for h in applied.item.history] == ["pending", "sent", "delivered"]


@pytest.mark.parametrize(
    ("first", "then"),
    [
        (report(Status.SENT), report(Status.PENDING, at=10)),  # backwards in rank, even if checked later
        (report(Status.DELIVERED, final=True), report(Status.SENT, at=10)),  # a stale "sent" after "delivered"
        (report(Status.DELIVERED, final=True), report(Status.FAILED, final=True, at=10)),  # the first final wins
        (report(Status.SENT, at=10), report(Status.UNKNOWN, code="x", at=5)),  # same rank, checked before: stale
    ],
)
def test_backwards_stale_or_after_final_answers_are_not_stored(first: Report, then: Report) -> None:
    assert apply_report(stored(first), then, key=KEY, tracked_since=T0) is None


def test_a_final_answer_replaces_an_open_one_even_if_checked_earlier() -> None:
    applied = apply_report(stored(report(Status.SENT, at=10)), report(Status.UNDELIVERED, final=True, at=5), key=KEY, tracked_since=T0)
    assert applied.changed
    assert applied.item.report.status is Status.UNDELIVERED


def test_the_same_status_again_is_no_change_and_no_new_history() -> None:
    applied = apply_report(stored(report(Status.SENT)), report(Status.SENT, at=30), key=KEY, tracked_since=T0)
    assert not applied.changed
    assert len(applied.item.history) == 1
    assert applied.item.report.checked_at == T0 + timedelta(seconds=30)  # the latest check is kept


def test_a_new_provider_code_with_the_same_status_is_history_but_not_a_change() -> None:
    applied = apply_report(stored(report(Status.SENT, code="3")), report(Status.SENT, code="0", at=30), key=KEY, tracked_since=T0)
    assert not applied.changed
    assert [h.code for h in applied.item.history] == ["3", "0"]


def test_history_keeps_the_last_50_entries() -> None:
    # 50 is the documented bound (docs/queue.md, "last 50"), written here rather than read from the code.
    item = stored(*(report(Status.SENT, code=str(i), at=i) for i in range(55)))
    assert [h.code for h in item.history] == [str(i) for i in range(5, 55)]


def test_history_below_the_bound_is_kept_whole() -> None:
    item = stored(*(report(Status.SENT, code=str(i), at=i) for i in range(50)))
    assert [h.code for h in item.history] == [str(i) for i in range(50)]


def test_a_report_checked_at_the_same_instant_is_not_stale() -> None:
    # Only a report checked *before* the stored one is a late duplicate; the same instant is applied.
    applied = apply_report(stored(report(Status.SENT, code="3", at=10)), report(Status.SENT, code="0", at=10), key=KEY, tracked_since=T0)
    assert applied is not None
    assert applied.item.report.provider_status.code == "0"
    assert [h.code for h in applied.item.history] == ["3", "0"]


def test_history_entries_record_when_the_provider_answered() -> None:
    item = stored(report(Status.PENDING), report(Status.SENT, at=10))
    assert [h.to_dict() for h in item.history] == [
        {"status": "pending", "code": "pending", "at": "2025-01-01T12:00:00Z"},
        {"status": "sent", "code": "sent", "at": "2025-01-01T12:00:10Z"},
    ]


def test_an_explicit_time_wins_over_checked_at_in_history() -> None:
    # The window-closed settlement records when the window closed, not when the provider last answered.
    closed = T0 + timedelta(days=5)
    applied = apply_report(stored(report(Status.SENT)), report(Status.UNKNOWN, final=True, at=5), key=KEY, tracked_since=T0, at=closed)
    assert applied.item.history[-1].at == "2025-01-06T12:00:00Z"
    first = apply_report(None, report(Status.SENT, at=5), key=KEY, tracked_since=T0, at=closed)
    assert first.item.history[0].at == "2025-01-06T12:00:00Z"


def test_the_first_answer_keeps_the_key_and_when_tracking_started() -> None:
    since = T0 - timedelta(hours=1)
    applied = apply_report(None, report(Status.PENDING), key=KEY, tracked_since=since)
    assert (applied.item.key, applied.item.tracked_since) == (KEY, since)
    assert applied.item.key.pk == "wooxy#id#m1"


def test_the_public_view_of_a_tracked_message() -> None:
    item = stored(report(Status.PENDING), report(Status.DELIVERED, final=True, at=10))
    public = item.to_public()
    assert public == {
        "report": item.report.to_dict(),
        "history": [
            {"status": "pending", "code": "pending", "at": "2025-01-01T12:00:00Z"},
            {"status": "delivered", "code": "delivered", "at": "2025-01-01T12:00:10Z"},
        ],
        "context": None,
        "tracked_since": "2025-01-01T12:00:00Z",
        "next_check_at": None,  # final: nothing is due
    }
    # A next check still recorded on a final item (the message that was due when it settled) is not shown.
    assert replace(item, next_check_at=T0 + timedelta(minutes=5)).to_public()["next_check_at"] is None
    open_item = replace(stored(report(Status.SENT)), next_check_at=T0 + timedelta(minutes=5), context={"order": "A1"})
    assert (open_item.to_public()["next_check_at"], open_item.to_public()["context"]) == ("2025-01-01T12:05:00Z", {"order": "A1"})


def test_rank_orders_pending_below_sent_below_final() -> None:
    pending, not_found, sent, unknown = (rank(report(s)) for s in (Status.PENDING, Status.NOT_FOUND, Status.SENT, Status.UNKNOWN))
    delivered, expired = rank(report(Status.DELIVERED, final=True)), rank(report(Status.EXPIRED, final=True))
    assert pending == not_found < sent == unknown < delivered == expired


# ---- an item followed with no usable answer yet ----------------------------------------------------------
def answerless() -> Tracked:
    return Tracked(
        KEY, None, T0 - timedelta(hours=1), context={"o": 1}, chain="c1", next_check_at=T0 + timedelta(minutes=1), version=3, expires_at=99
    )


def test_an_answerless_item_is_open_and_shows_no_report() -> None:
    item = answerless()
    assert not item.final
    assert item.to_public() == {
        "report": None,
        "history": [],
        "context": {"o": 1},
        "tracked_since": "2025-01-01T11:00:00Z",
        "next_check_at": "2025-01-01T12:01:00Z",
    }


def test_the_first_answer_of_an_answerless_item_keeps_what_it_holds() -> None:
    first = report(Status.SENT, at=10)
    applied = apply_report(answerless(), first, key=KEY, tracked_since=T0)  # not this call's start: the item's
    entry = HistoryEntry("sent", "sent", "2025-01-01T12:00:10Z")
    # the item keeps its chain, context, start, version and expiry; the answer counts as the first one
    assert applied == Applied(replace(answerless(), report=first, history=(entry,)), changed=True, previous_status=None)


# ---- what a stored report may hold ----------------------------------------------------------------------------
def with_strings(code: str = "sent", description: str | None = None, details: dict | None = None) -> Report:
    return Report(Provider.WOOXY, "m1", Status.SENT, False, ProviderStatus(code, description), checked_at=T0, details=details)


def test_a_normal_report_is_stored_as_it_is() -> None:
    # the longest code, description and details that fit (details measured serialized without spaces)
    details = {"a": "x" * 7985, "b": ""}
    assert len(json.dumps(details, separators=(",", ":"))) == 8000
    fits = with_strings("c" * 100, "d" * 1000, details)
    assert bounded(fits) is fits
    plain = with_strings()
    assert bounded(plain) is plain


def test_a_long_provider_code_is_cut_with_the_mark_and_said_so() -> None:
    cut = bounded(with_strings("c" * 101, "short", {"raw": "x"}))
    assert cut == replace(
        with_strings(), provider_status=ProviderStatus("c" * 99 + "…", "short"), details={"raw": "x", "truncated": ["provider_status.code"]}
    )
    assert len(cut.provider_status.code) == 100


def test_a_long_description_is_cut_with_the_mark_and_said_so() -> None:
    cut = bounded(with_strings("sent", "d" * 250_000))
    assert cut == replace(
        with_strings(), provider_status=ProviderStatus("sent", "d" * 999 + "…"), details={"truncated": ["provider_status.description"]}
    )


def test_oversized_details_are_replaced_and_everything_cut_is_listed() -> None:
    details = {"a": "x" * 7985, "b": "y"}  # 8001 bytes
    assert bounded(with_strings(details=details)) == replace(with_strings(), details={"truncated": ["details"]})
    everything = bounded(with_strings("c" * 500, "d" * 5000, {"raw": "z" * 10_000}))
    assert everything.provider_status == ProviderStatus("c" * 99 + "…", "d" * 999 + "…")
    assert everything.details == {"truncated": ["provider_status.code", "provider_status.description", "details"]}


def test_details_are_measured_as_stored() -> None:
    # non-ASCII is stored escaped: 1,334 characters, 8,012 bytes
    assert bounded(with_strings(details={"a": "é" * 1334})).details == {"truncated": ["details"]}


def test_a_report_is_stored_bounded_and_its_history_holds_the_cut_code() -> None:
    applied = apply_report(None, with_strings("c" * 101), key=KEY, tracked_since=T0)
    assert applied.item.report == bounded(with_strings("c" * 101))
    assert applied.item.history == (HistoryEntry("sent", "c" * 99 + "…", "2025-01-01T12:00:00Z"),)


def test_an_empty_provider_code_stays_empty_when_the_description_is_cut() -> None:
    cut = bounded(with_strings("", "d" * 1001))
    assert cut.provider_status == ProviderStatus("", "d" * 999 + "…")

"""The rule that statuses never go backwards (store.apply_report): pure, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sms_status.model import Provider, ProviderStatus, Report, Status
from sms_status.store import MAX_HISTORY, TrackKey, apply_report

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


def test_history_is_bounded() -> None:
    item = stored(*(report(Status.SENT, code=str(i), at=i) for i in range(MAX_HISTORY + 5)))
    assert len(item.history) == MAX_HISTORY
    assert item.history[-1].code == str(MAX_HISTORY + 4)

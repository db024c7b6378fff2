"""Every documented Wooxy status has exactly one meaning; anything else is unknown and not final."""

from __future__ import annotations

import pytest

from sms_status.mapping.wooxy import STATUSES, classify
from sms_status.model import Outcome, Status

DOCUMENTED = {
    "new": Outcome(Status.PENDING, final=False),
    "queued": Outcome(Status.PENDING, final=False),
    "sent": Outcome(Status.SENT, final=False),
    "delivered": Outcome(Status.DELIVERED, final=True),
    "undelivered": Outcome(Status.UNDELIVERED, final=True),
    "failed": Outcome(Status.FAILED, final=True),
}


def test_table_covers_exactly_the_documented_statuses():
    assert set(STATUSES) == set(DOCUMENTED)


@pytest.mark.parametrize(("status", "expected"), DOCUMENTED.items())
def test_documented_status(status: str, expected: Outcome):
    assert classify(status) == expected


@pytest.mark.parametrize("status", ["Delivered", " DELIVERED ", "delivered\n", "\tdelivered"])
def test_case_and_surrounding_whitespace_are_ignored(status: str):
    assert classify(status) == Outcome(Status.DELIVERED, final=True)


@pytest.mark.parametrize("status", ["", "paused", "expired", "rejected", "deliv ered", "read"])
def test_undocumented_status_is_unknown_and_not_final(status: str):
    outcome = classify(status)
    assert outcome.status is Status.UNKNOWN
    assert outcome.final is False
    assert outcome.retryable is False


def test_no_documented_status_is_retryable():
    # `failed` mixes rejection and expiry; without knowing which, re-sending is not advised.
    assert not any(outcome.retryable for outcome in STATUSES.values())


def test_final_statuses_are_exactly_the_terminal_ones():
    assert {status for status, outcome in STATUSES.items() if outcome.final} == {"delivered", "undelivered", "failed"}

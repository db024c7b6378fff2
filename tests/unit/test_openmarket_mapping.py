"""The OpenMarket code table: every documented code and range (OpenMarket's v3 code pages and the v4 docs), unknown codes, and the
5-day window rule. Expectations are written out here, independently of the table they check."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest

from sms_status.mapping.openmarket import (
    QUERY_WINDOW,
    RETRYABLE_CODES,
    TABLE,
    classify,
    on_window_closed,
    outcome_after_window,
)
from sms_status.model import Outcome, Provider, ProviderStatus, Report, Status, not_found

# (first, last, status, final) as OpenMarket's code pages describe each documented code or block.
EXPECTED_RANGES: list[tuple[int, int, Status, bool]] = [
    (0, 0, Status.SENT, False),  # success only if it is the final receipt: promoted when the window closes
    (1, 2, Status.PENDING, False),
    (3, 3, Status.SENT, False),
    (4, 4, Status.DELIVERED, True),
    (5, 5, Status.SENT, False),  # legacy "transferred to carrier, waiting"
    (301, 323, Status.FAILED, True),
    (330, 399, Status.FAILED, True),
    (400, 409, Status.FAILED, True),
    (410, 419, Status.UNDELIVERED, True),
    (420, 461, Status.FAILED, True),
    (507, 514, Status.UNDELIVERED, True),
    (560, 572, Status.REJECTED, True),
    (581, 581, Status.UNKNOWN, False),
    (711, 711, Status.NOT_FOUND, True),
    (800, 809, Status.FAILED, True),
    (810, 810, Status.UNDELIVERED, True),
    (811, 811, Status.EXPIRED, True),
    (812, 814, Status.FAILED, True),
    (815, 815, Status.UNKNOWN, False),
    (830, 830, Status.UNDELIVERED, True),
    (831, 831, Status.SENT, False),
    (1000, 1030, Status.FAILED, True),
    (2001, 2010, Status.FAILED, True),
    (2011, 2011, Status.EXPIRED, True),
    (2012, 2126, Status.FAILED, True),
    (3041, 3042, Status.REJECTED, True),
    (4000, 4055, Status.FAILED, True),
]
EVERY_DOCUMENTED_CODE = [(code, status, final) for first, last, status, final in EXPECTED_RANGES for code in range(first, last + 1)]


@pytest.mark.parametrize(("code", "status", "final"), EVERY_DOCUMENTED_CODE)
def test_every_documented_code_has_its_outcome(code: int, status: Status, final: bool) -> None:
    outcome = classify(code)
    assert (outcome.status, outcome.final) == (status, final)
    assert outcome.retryable == (code in {351, 581, 811, 815, 1010, 1020})


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0, Outcome(Status.SENT, final=False)),
        (4, Outcome(Status.DELIVERED, final=True)),
        (351, Outcome(Status.FAILED, final=True, retryable=True)),
        (581, Outcome(Status.UNKNOWN, final=False, retryable=True)),
        (811, Outcome(Status.EXPIRED, final=True, retryable=True)),
        (815, Outcome(Status.UNKNOWN, final=False, retryable=True)),
        (1010, Outcome(Status.FAILED, final=True, retryable=True)),
        (1020, Outcome(Status.FAILED, final=True, retryable=True)),
        (1030, Outcome(Status.FAILED, final=True, retryable=False)),  # Tatango: non-retryable
        (509, Outcome(Status.UNDELIVERED, final=True)),
        (3041, Outcome(Status.REJECTED, final=True)),
    ],
)
def test_debatable_rows(code: int, expected: Outcome) -> None:
    assert classify(code) == expected


def test_retryable_codes_are_exactly_openmarkets_list() -> None:
    assert frozenset({351, 581, 811, 815, 1010, 1020}) == RETRYABLE_CODES
    assert {code for code in range(-5, 5000) if classify(code).retryable} == RETRYABLE_CODES


@pytest.mark.parametrize(
    "code",
    [
        -1,
        6,
        300,
        324,
        329,
        462,
        506,
        515,
        559,
        573,
        580,
        582,
        710,
        712,
        799,
        816,
        829,
        832,
        999,
        1031,
        2000,
        2127,
        3040,
        3043,
        3999,
        4056,
        10_000,
    ],
)
def test_unknown_codes_are_unknown_and_not_final(code: int) -> None:
    assert classify(code) == Outcome(Status.UNKNOWN, final=False, retryable=False)


def test_table_rows_are_ordered_and_disjoint() -> None:
    for row in TABLE:
        assert row.first <= row.last
    for before, after in pairwise(TABLE):
        assert before.last < after.first


def test_query_window_is_five_days() -> None:
    assert timedelta(days=5) == QUERY_WINDOW


def _report(code: str, outcome: Outcome) -> Report:
    return Report.from_outcome(Provider.OPENMARKET, "T-1", outcome, ProviderStatus(code, None))


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0, Outcome(Status.DELIVERED, final=True)),  # "sent" was the final receipt: a success
        (1, Outcome(Status.UNKNOWN, final=True)),
        (2, Outcome(Status.UNKNOWN, final=True)),
        (3, Outcome(Status.UNKNOWN, final=True)),
        (5, Outcome(Status.UNKNOWN, final=True)),
        (831, Outcome(Status.UNKNOWN, final=True)),
        (815, Outcome(Status.UNKNOWN, final=True, retryable=True)),
        (581, Outcome(Status.UNKNOWN, final=True, retryable=True)),
        (9999, Outcome(Status.UNKNOWN, final=True)),
        (4, Outcome(Status.DELIVERED, final=True)),  # final answers are kept as they are
        (509, Outcome(Status.UNDELIVERED, final=True)),
    ],
)
def test_window_closing_settles_every_open_answer(code: int, expected: Outcome) -> None:
    assert outcome_after_window(code, classify(code)) == expected
    settled = on_window_closed(_report(str(code), classify(code)))
    assert (settled.status, settled.final, settled.retryable) == (expected.status, expected.final, expected.retryable)
    assert settled.provider_status.code == str(code)  # the raw answer is kept


def test_window_closing_does_not_promote_an_error_report_that_carries_code_0() -> None:
    error_report = _report("0", Outcome(Status.UNKNOWN, final=False))
    settled = on_window_closed(error_report)
    assert (settled.status, settled.final) == (Status.UNKNOWN, True)


def test_window_closing_keeps_final_reports() -> None:
    missing = not_found(Provider.OPENMARKET, "T-1", "711", None)
    assert on_window_closed(missing) is missing

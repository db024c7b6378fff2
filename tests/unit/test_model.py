from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from sms_status.model import Provider, ProviderStatus, Report, Status, iso, not_found, parse_price, parse_provider_time, to_json

PINNED_FIELDS = [
    "provider", "id", "status", "final", "provider_status", "retryable", "submitted_at", "sent_at",
    "delivered_at", "recipient", "price", "currency", "checked_at",
]  # fmt: skip


def make_report(**fields) -> Report:
    base = {
        "provider": Provider.WWT,
        "id": "211",
        "status": Status.DELIVERED,
        "final": True,
        "provider_status": ProviderStatus("delivered", None),
        "checked_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    return Report(**(base | fields))


def test_report_serializes_exactly_the_pinned_fields_in_order():
    body = make_report().to_dict()
    assert list(body) == PINNED_FIELDS
    assert body["status"] == "delivered"
    assert body["provider_status"] == {"code": "delivered", "description": None}
    assert body["checked_at"] == "2026-01-02T03:04:05Z"


def test_the_nine_pinned_statuses():
    assert [s.value for s in Status] == [
        "pending", "sent", "delivered", "undelivered", "expired", "rejected", "failed", "unknown", "not_found",
    ]  # fmt: skip


def test_times_are_iso_utc_whatever_zone_they_came_in():
    kyiv = timezone(timedelta(hours=2))
    assert iso(datetime(2017, 1, 17, 11, 11, 41, tzinfo=kyiv)) == "2017-01-17T09:11:41Z"
    assert iso(datetime(2017, 1, 17, 9, 11, 41)) == "2017-01-17T09:11:41Z"  # naive means UTC
    assert iso(datetime(2017, 1, 17, 9, 11, 41, 250000, tzinfo=UTC)) == "2017-01-17T09:11:41.250Z"
    assert iso(None) is None


def test_details_only_when_present_and_price_as_number():
    body = make_report(price=Decimal("0.23"), currency="EUR", details={"reference": "ext19"}).to_dict()
    assert body["price"] == 0.23
    assert body["details"] == {"reference": "ext19"}


def test_round_trip_through_dict():
    report = make_report(price=Decimal("1.1"), submitted_at=datetime(2019, 9, 30, 0, 59, 39, tzinfo=UTC), details={"a": 1})
    assert Report.from_dict(report.to_dict()) == report


def test_not_found_is_final():
    report = not_found(Provider.WOOXY, "abc", "not_found", "SMS abc not found")
    assert (report.status, report.final, report.retryable) == (Status.NOT_FOUND, True, False)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2019-09-30 00:59:39", datetime(2019, 9, 30, 0, 59, 39, tzinfo=UTC)),
        (" 2019-09-30 00:59:39 ", datetime(2019, 9, 30, 0, 59, 39, tzinfo=UTC)),
        ("", None),
        ("2019-09-30T00:59:39Z", None),
        ("yesterday", None),
        (None, None),
        (1569805179, None),
    ],
)
def test_provider_time(raw, expected):
    assert parse_provider_time(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0.23, Decimal("0.23")),
        ("1.1000000", Decimal("1.1")),
        (3, Decimal(3)),
        ("abc", None),
        (None, None),
        (True, None),
        ("NaN", None),
        ("Infinity", None),
        ("1e400", None),  # a finite Decimal, but no double holds it: JSON readers would see Infinity
        ("-1e400", None),
        ("1e308", Decimal("1e308")),
    ],
)
def test_price(raw, expected):
    assert parse_price(raw) == expected


def test_a_price_no_double_can_hold_is_written_as_null_never_infinity():
    body = make_report(price=Decimal("1e400"), currency="EUR").to_dict()
    assert body["price"] is None
    assert '"price": null' in to_json(body)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), {"a": [1, float("nan")]}])
def test_json_written_anywhere_refuses_nan_and_infinity(value):
    with pytest.raises(ValueError, match="JSON compliant"):
        to_json(value)

"""Provider answers at the edges: one unreadable Wooxy entry among good ones, whitespace in keys, unreadable
times and prices, WWT's scheduled time. No network."""

from __future__ import annotations

import json

import pytest

from sms_status.model import Status
from sms_status.providers import wooxy, wwt


def wooxy_answer(data: dict, errors: list[str] | None = None) -> bytes:
    return json.dumps({"result": True, "data": data, "errors": errors or []}).encode()


@pytest.mark.parametrize(
    "bad_entry",
    ["delivered", 4, ["delivered"], {"id": "m2", "status": 4}, {"id": "m2"}, {"id": "m2", "status": ""}],
)
def test_one_unreadable_wooxy_entry_is_that_ids_error_and_the_others_keep_their_answers(bad_entry):
    body = wooxy_answer({"m1": {"id": "m1", "status": "delivered"}, "m2": bad_entry, "m3": None})

    m1, m2, m3 = wooxy.parse_response(["m1", "m2", "m3"], body, 200)

    assert (m1.status, m1.final) == (Status.DELIVERED, True)
    assert (m2.status, m2.final, m2.retryable) == (Status.UNKNOWN, False, False)
    assert m2.details["error"]["code"] == "provider_error"
    assert m2.provider_status.code == "unreadable_entry"
    assert m3.status is Status.NOT_FOUND


def test_a_spaced_key_answers_the_id_without_the_space_never_the_reverse():
    body = wooxy_answer({"5 bc0a": {"status": "sent"}, "xy": {"status": "delivered"}})

    spaced, reverse = wooxy.parse_response(["5bc0a", "x y"], body, 200)

    assert spaced.status is Status.SENT
    assert reverse.details["error"]["details"]["provider_code"] == "not_mentioned"


def test_two_spaced_keys_for_one_id_answer_no_one():
    body = wooxy_answer({"a bc": {"status": "sent"}, "ab c": {"status": "delivered"}})

    (report,) = wooxy.parse_response(["abc"], body, 200)

    assert report.details["error"]["code"] == "provider_error"


def test_a_not_found_string_for_a_b_does_not_answer_ab():
    (report,) = wooxy.parse_response(["ab"], wooxy_answer({}, ["SMS a b not found"]), 200)
    assert report.status is Status.NOT_FOUND  # the documented spelling with a space stands for "ab"

    (report,) = wooxy.parse_response(["a b"], wooxy_answer({}, ["SMS ab not found"]), 200)
    assert report.status is Status.UNKNOWN
    assert "error" in report.details


def test_an_unreadable_wooxy_time_is_null_with_the_value_kept():
    body = wooxy_answer({"m1": {"id": "m1", "status": "sent", "createdAt": "30/09/2019 00:59"}})

    (report,) = wooxy.parse_response(["m1"], body, 200)

    assert report.submitted_at is None
    assert report.details == {"unparsed": {"createdAt": "30/09/2019 00:59"}}


def wwt_answer(**fields) -> bytes:
    return json.dumps({"error": 0, "errorDescription": "", **fields}).encode()


@pytest.mark.parametrize("price", ["1e400", "-1e400", "9" * 400])
def test_a_wwt_price_beyond_a_json_number_is_omitted_and_kept_as_text(price):
    report = wwt.parse_response("42", wwt_answer(status="delivered", price=price, currency="EUR"), 200)

    assert report.price is None
    assert report.details["unparsed"]["price"] == price[:64]
    json.dumps(report.to_dict(), allow_nan=False)


def test_a_wwt_json_number_too_large_for_a_float_is_omitted():
    body = b'{"error": 0, "status": "delivered", "price": 1e400}'

    report = wwt.parse_response("42", body, 200)

    assert report.price is None
    json.dumps(report.to_dict(), allow_nan=False)


def test_wwt_time_sent_while_pending_is_a_schedule_not_a_sending_time():
    report = wwt.parse_response("42", wwt_answer(status="scheduled", time_sent="2030-01-01 10:00:00"), 200)

    assert report.status is Status.PENDING
    assert report.sent_at is None
    assert report.details["scheduled_at"] == "2030-01-01 10:00:00"


def test_wwt_time_sent_once_sent_is_the_sending_time():
    report = wwt.parse_response("42", wwt_answer(status="sent", time_sent="2024-01-01 10:00:00"), 200)

    assert report.to_dict()["sent_at"] == "2024-01-01T10:00:00Z"
    assert "scheduled_at" not in report.details


def test_unreadable_wwt_times_are_null_with_the_values_kept():
    report = wwt.parse_response("42", wwt_answer(status="delivered", time_in="yesterday", time_dr=17), 200)

    assert (report.submitted_at, report.delivered_at) == (None, None)
    assert report.details["unparsed"] == {"time_in": "yesterday", "time_dr": "17"}


def test_deeply_nested_wwt_json_is_a_provider_error():
    from sms_status.errors import ProviderError

    with pytest.raises(ProviderError):
        wwt.parse_response("42", b"[" * 100_000 + b"]" * 100_000, 200)


# ---- exact contents of the edge answers (each assertion found missing by mutation testing) -----------------
@pytest.mark.parametrize(
    ("bad_entry", "why"),
    [
        ("delivered", "wooxy answered a data entry for this id that is neither an object nor null"),
        ({"id": "m2", "status": 4}, "wooxy answered a data entry for this id without a status string"),
    ],
)
def test_an_unreadable_wooxy_entry_says_why_for_its_own_id(bad_entry, why):
    from datetime import UTC, datetime

    checked_at = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    (m2,) = wooxy.parse_response(["m2"], wooxy_answer({"m2": bad_entry}), 200, checked_at)
    assert (m2.id, m2.checked_at, m2.provider_status.code, m2.provider_status.description) == ("m2", checked_at, "unreadable_entry", why)


def test_an_entry_whose_id_field_names_another_id_answers_neither_by_its_key():
    # Under the key "m1" Wooxy put the entry of "m9": "m1" is not answered by it (the id field wins).
    m1, m9 = wooxy.parse_response(["m1", "m9"], wooxy_answer({"m1": {"id": "m9", "status": "delivered"}}), 200)
    assert m1.provider_status.code == "not_mentioned"
    assert (m9.id, m9.status) == ("m9", Status.DELIVERED)
    # an id field naming the key itself is the ordinary case
    (same,) = wooxy.parse_response(["m1"], wooxy_answer({"m1": {"id": "m1", "status": "delivered"}}), 200)
    assert same.status is Status.DELIVERED


@pytest.mark.parametrize(("raw", "unparsed"), [("1e400", "1e400"), ([1], "[1]"), ("", None), (None, None)])
def test_a_wwt_price_no_json_number_can_hold_is_null_with_its_text_kept(raw, unparsed):
    payload = json.dumps({"status": "delivered", "id": 211, "price": raw, "currency": "EUR"}).encode()
    report = wwt.parse_response("211", payload, 200)
    assert report.price is None
    assert (report.details or {}).get("unparsed", {}).get("price") == unparsed

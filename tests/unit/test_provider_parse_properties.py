"""Property tests for the three provider parsers: whatever bytes a provider sends, the answer is reports (one per
id asked, in order, valid JSON with no non-finite number) or a typed provider error. Never another exception."""

from __future__ import annotations

import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sms_status.errors import ProviderAuthError, ProviderError, ProviderUnavailable
from sms_status.model import Report
from sms_status.providers import openmarket, wooxy, wwt

TYPED = (ProviderError, ProviderAuthError, ProviderUnavailable)
HTTP_STATUSES = st.sampled_from([200, 201, 400, 401, 403, 404, 409, 422])
PROPERTIES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
ids = st.text(alphabet=string.ascii_lowercase + string.digits + " ", min_size=1, max_size=6).filter(str.strip)


def as_json(report: Report) -> str:
    return json.dumps(report.to_dict(), allow_nan=False)  # raises on NaN/Infinity: what EventBridge would refuse


def checked(call):
    """The parser's answer, or None for a typed provider error; any other exception fails the property."""
    try:
        return call()
    except TYPED:
        return None


# ---- OpenMarket (XML) ----------------------------------------------------------------------------
xml_codes = st.one_of(st.integers(-5, 5000).map(str), st.text(max_size=6))
xml_bodies = st.builds(
    lambda root, error, status, junk: f'<?xml version="1.0"?><{root}>{error}{status}</{root}>{junk}'.encode(),
    st.sampled_from(["response", "request", "x"]),
    st.one_of(st.just(""), xml_codes.map(lambda c: f'<error code="{c}" description="d"/>')),
    st.one_of(st.just(""), xml_codes.map(lambda c: f'<status code="{c}" description="s"/>')),
    st.sampled_from(["", "<", "&lol;", "\x00"]),
)


@PROPERTIES
@given(body=st.binary(max_size=300) | xml_bodies, http_status=HTTP_STATUSES)
def test_openmarket_any_body_is_a_report_or_a_typed_error(body, http_status):
    report = checked(lambda: openmarket.parse_response("ticket-1", body, http_status))
    if report is not None:
        assert report.id == "ticket-1"
        as_json(report)


def test_openmarket_deep_nesting_is_a_typed_error_or_a_report():
    body = b"<response>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</response>"
    assert checked(lambda: openmarket.parse_response("t", body, 200)) is None


# ---- Wooxy (JSON, many ids) ----------------------------------------------------------------------
wooxy_entries = st.one_of(
    st.none(),
    json_values,
    st.fixed_dictionaries(
        {"status": st.sampled_from(["delivered", "sent", "failed", "new", "weird"]) | json_values},
        optional={"id": ids | json_values, "createdAt": st.text(max_size=20) | json_values, "phoneNumber": json_values},
    ),
)
wooxy_payloads = st.fixed_dictionaries(
    {"result": st.just(True) | st.booleans() | json_values},
    optional={
        "data": st.dictionaries(ids, wooxy_entries, max_size=5) | json_values,
        "errors": st.lists(st.text(max_size=30) | ids.map(lambda i: f"SMS {i} not found"), max_size=3) | json_values,
    },
)


@PROPERTIES
@given(
    asked=st.lists(ids, min_size=1, max_size=5, unique=True),
    body=st.binary(max_size=300) | wooxy_payloads.map(lambda p: json.dumps(p).encode()),
    http_status=HTTP_STATUSES,
)
def test_wooxy_any_body_is_one_report_per_id_in_order_or_a_typed_error(asked, body, http_status):
    reports = checked(lambda: wooxy.parse_response(asked, body, http_status))
    if reports is not None:
        assert [r.id for r in reports] == asked
        for report in reports:
            as_json(report)


@PROPERTIES
@given(asked=st.lists(ids, min_size=1, max_size=5, unique=True), data=st.dictionaries(ids, wooxy_entries, max_size=6))
def test_wooxy_no_id_ever_gets_another_ids_status(asked, data):
    reports = wooxy.parse_response(asked, {"result": True, "data": data, "errors": []}, 200)
    for report in reports:
        if (report.details and "error" in report.details) or report.status.value == "not_found":
            continue
        # An answer comes from an entry that is this id's: its `id` field names it, or it has none and its key
        # is the id (or the id spelled with whitespace inside, as the documented example does).
        sources = [
            (key, entry) for key, entry in data.items() if isinstance(entry, dict) and entry.get("status") == report.provider_status.code
        ]
        assert any(
            entry.get("id") == report.id
            or (not (isinstance(entry.get("id"), str) and entry.get("id")) and "".join(key.split()) == report.id)
            for key, entry in sources
        ), (report.id, data)


def test_wooxy_the_id_a_b_never_gets_the_status_of_ab():
    body = {"result": True, "data": {"ab": {"status": "delivered"}}, "errors": []}
    (report,) = wooxy.parse_response(["a b"], body, 200)
    assert report.status.value == "unknown"
    assert report.details["error"]["code"] == "provider_error"


# ---- WWT (JSON, one id) --------------------------------------------------------------------------
wwt_fields = {
    "price": st.sampled_from(["1e400", "-1e400", "0.0400", "NaN", 1.5, "9" * 400]) | json_values,
    "time_in": st.text(max_size=20) | json_values,
    "time_sent": st.sampled_from(["2024-01-01 10:00:00", "2024-13-01 10:00:00"]) | json_values,
    "time_dr": st.text(max_size=20) | json_values,
    "msisdn": json_values,
    "id": json_values,
}
wwt_payloads = st.one_of(
    # A success shape, so the fields after `error` and `status` are really exercised...
    st.fixed_dictionaries(
        {"error": st.sampled_from([0, "0"]), "status": st.sampled_from(["delivered", "sent", "scheduled", "weird"])},
        optional=wwt_fields,
    ),
    # ...and anything else.
    st.fixed_dictionaries(
        {},
        optional={"error": st.sampled_from([0, "0", 1, 20, "20", 24, 99]) | json_values, "status": json_values} | wwt_fields,
    ),
)


@PROPERTIES
@given(
    body=st.binary(max_size=300) | wwt_payloads.map(lambda p: json.dumps(p).encode()),
    http_status=st.just(200) | HTTP_STATUSES,
)
def test_wwt_any_body_is_a_report_or_a_typed_error(body, http_status):
    report = checked(lambda: wwt.parse_response("42", body, http_status))
    if report is not None:
        assert report.id == "42"
        as_json(report)

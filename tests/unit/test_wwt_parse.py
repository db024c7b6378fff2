"""Reading WWT answers, validating ids and references, and reading the secret. No network.

Fixtures in tests/fixtures/wwt (shapes from the seed and BSG's public clients):
- success_delivered.json: BSG's documented example; its elided `time_sent`/`time_dr` filled with plausible times.
- success_sent_string_price.json: `error` as the string "0", price as the string "1.1000000" (BSG RCS report).
- success_undeliverable.json: a v1 task-counter status with a receipt time.
- error_not_found.json: the documented error body. error_string_code.json: the create endpoint's string code.
- error_invalid_api_key.json: bsg-python's client code 1 (inferred to be what the API answers).
- error_openapi_401.json: the error shape of BSG's generated OpenAPI spec.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from sms_status.errors import CredentialsError, InvalidRequest, ProviderAuthError, ProviderError
from sms_status.model import Status
from sms_status.providers.wwt import WwtClient, WwtCredentials, parse_response, validate_id, validate_reference
from tests.recording_http import RecordingHttp

FIXTURES = Path(__file__).parent.parent / "fixtures" / "wwt"
CHECKED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def success(**overrides: object) -> bytes:
    payload = json.loads(fixture("success_delivered.json"))
    payload.update(overrides)
    return json.dumps({k: v for k, v in payload.items() if v is not ...}).encode()


# ---- example bodies --------------------------------------------------------------------------------
def test_documented_example_parses_to_a_delivered_report():
    report = parse_response("211", fixture("success_delivered.json"), 200, checked_at=CHECKED)

    assert report.to_dict() == {
        "provider": "wwt",
        "id": "211",
        "status": "delivered",
        "final": True,
        "provider_status": {"code": "delivered", "description": None},
        "retryable": False,
        "submitted_at": "2017-01-17T09:11:41Z",
        "sent_at": "2017-01-17T09:11:42Z",
        "delivered_at": "2017-01-17T09:11:52Z",
        "recipient": "380972000001",
        "price": 0.23,
        "currency": "EUR",
        "checked_at": "2024-05-01T12:00:00Z",
        "details": {"wwt_id": "211", "reference": "ext_id_19"},
    }
    assert report.price == Decimal("0.23")


def test_string_error_zero_and_string_price():
    report = parse_response("212", fixture("success_sent_string_price.json"), 200, checked_at=CHECKED)

    assert report.to_dict() == {
        "provider": "wwt",
        "id": "212",
        "status": "sent",
        "final": False,
        "provider_status": {"code": "sent", "description": None},
        "retryable": False,
        "submitted_at": "2017-01-17T09:11:41Z",
        "sent_at": "2017-01-17T09:11:42Z",
        "delivered_at": None,
        "recipient": "380972000002",
        "price": 1.1,
        "currency": "EUR",
        "checked_at": "2024-05-01T12:00:00Z",
        "details": {"wwt_id": "212", "reference": "extid20"},
    }
    assert report.price == Decimal("1.1000000")


def test_receipt_time_of_a_failure_stays_in_details_not_delivered_at():
    report = parse_response("extid21", fixture("success_undeliverable.json"), 200, checked_at=CHECKED)

    assert (report.status, report.final) == (Status.UNDELIVERED, True)
    assert report.id == "extid21"  # the key as asked (here a reference), not WWT's id
    assert report.delivered_at is None
    assert report.details == {"wwt_id": "213", "reference": "extid21", "time_dr": "2017-01-17 10:00:00"}


def test_not_found_fixture():
    report = parse_response("999", fixture("error_not_found.json"), 200, checked_at=CHECKED)

    assert report.to_dict() == {
        "provider": "wwt",
        "id": "999",
        "status": "not_found",
        "final": True,
        "provider_status": {"code": "20", "description": "SMS not found"},
        "retryable": False,
        "submitted_at": None,
        "sent_at": None,
        "delivered_at": None,
        "recipient": None,
        "price": None,
        "currency": None,
        "checked_at": "2024-05-01T12:00:00Z",
    }


def test_string_code_fixture_is_a_provider_error_with_its_code():
    with pytest.raises(ProviderError) as caught:
        parse_response("211", fixture("error_string_code.json"), 200)
    assert caught.value.provider_code == "25"
    assert caught.value.provider_description == "Invalid originator"


@pytest.mark.parametrize("name", ["error_invalid_api_key.json", "error_openapi_401.json"])
def test_auth_fixtures_with_http_401_are_auth_errors(name: str):
    with pytest.raises(ProviderAuthError):
        parse_response("211", fixture(name), 401)


# ---- error codes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("error", [20, "20", " 20"])
@pytest.mark.parametrize("http_status", [200, 404])
def test_not_found_as_number_or_string_inside_200_or_404(error: object, http_status: int):
    report = parse_response("123", body(error=error, errorDescription="SMS not found"), http_status)

    assert (report.status, report.final, report.id) == (Status.NOT_FOUND, True, "123")
    assert report.provider_status.code == "20"


def test_not_found_without_description_uses_the_seed_text():
    report = parse_response("123", body(error=20), 200)
    assert report.provider_status.description == "SMS not found"


@pytest.mark.parametrize("code", [c for c in range(21, 37)])
@pytest.mark.parametrize("as_string", [False, True])
@pytest.mark.parametrize("http_status", [200, 400, 404])
def test_other_seed_codes_are_provider_errors(code: int, as_string: bool, http_status: int):
    error = str(code) if as_string else code
    with pytest.raises(ProviderError) as caught:
        parse_response("123", body(error=error), http_status)

    assert not isinstance(caught.value, ProviderAuthError)
    assert caught.value.http_status == 502
    assert caught.value.provider_code == str(code)
    assert caught.value.provider_description  # the seed description fills in a missing errorDescription
    assert caught.value.details["http_status"] == http_status


@pytest.mark.parametrize("code", [22, 24, 27])
def test_request_rejections_say_they_point_to_a_bug(code: int):
    with pytest.raises(ProviderError, match="validated"):
        parse_response("123", body(error=code), 200)


@pytest.mark.parametrize("error", [1, "1"])
def test_invalid_api_key_code_inside_200_is_an_auth_error(error: object):
    with pytest.raises(ProviderAuthError) as caught:
        parse_response("123", body(error=error, errorDescription="Invalid API key"), 200)
    assert caught.value.details["provider_code"] == "1"


@pytest.mark.parametrize("http_status", [401, 403])
@pytest.mark.parametrize("payload", [b"", b"<html>Forbidden</html>", b'{"error": 0}'])
def test_http_401_and_403_are_auth_errors_whatever_the_body(http_status: int, payload: bytes):
    with pytest.raises(ProviderAuthError):
        parse_response("123", payload, http_status)


# ---- bodies we cannot read ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"{",
        b'{"error":0,"errorDescription":"No errors","id":"21',
        b"<html><body>Bad Gateway</body></html>",
        b"\xff\xfe",
        b"[]",
        b'"delivered"',
        b"null",
        b'{"error": "abc"}',
        b'{"error": 1.5}',
        b'{"error": true}',
        b'{"error": [0]}',
        b'{"error": 0, "errorDescription": "No errors"}',
        b'{"error": 0, "status": ""}',
        b'{"error": 0, "status": 4}',
        b'{"errorDescription": "No errors"}',
        b'{"code": 404, "message": "Not Found"}',
    ],
)
def test_unreadable_or_wrong_shape_is_a_provider_error(payload: bytes):
    with pytest.raises(ProviderError) as caught:
        parse_response("123", payload, 200)
    assert not isinstance(caught.value, ProviderAuthError)


def test_success_body_under_an_error_http_status_is_a_provider_error():
    with pytest.raises(ProviderError):
        parse_response("211", fixture("success_delivered.json"), 404)


def test_body_without_error_field_is_read_when_it_carries_a_status():
    report = parse_response("211", success(error=..., errorDescription=...), 200)
    assert report.status is Status.DELIVERED


# ---- fields ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("time_dr", ["", None, ...])
def test_missing_receipt_time_is_tolerated(time_dr: object):
    report = parse_response("211", success(time_dr=time_dr), 200)
    assert (report.status, report.delivered_at) == (Status.DELIVERED, None)
    assert "time_dr" not in report.details


def test_read_counts_as_delivered_with_the_receipt_time():
    report = parse_response("211", success(status="read"), 200)
    assert (report.status, report.final) == (Status.DELIVERED, True)
    assert report.delivered_at == datetime(2017, 1, 17, 9, 11, 52, tzinfo=UTC)


def test_unmapped_status_is_unknown_with_the_raw_value_kept():
    report = parse_response("211", success(status="Deleted_By_Operator"), 200)
    assert (report.status, report.final) == (Status.UNKNOWN, False)
    assert report.provider_status.code == "Deleted_By_Operator"
    assert report.delivered_at is None
    assert report.details["time_dr"] == "2017-01-17 09:11:52"


def test_status_is_matched_case_insensitively_and_kept_raw():
    report = parse_response("211", success(status="DELIVERED"), 200)
    assert report.status is Status.DELIVERED
    assert report.provider_status.code == "DELIVERED"


def test_integer_id_and_msisdn_become_strings():
    report = parse_response("211", success(id=211, msisdn=380972000001), 200)
    assert report.recipient == "380972000001"
    assert report.details["wwt_id"] == "211"


def test_missing_optional_fields_become_null():
    report = parse_response("211", body(error=0, status="accepted"), 200)
    assert report.to_dict() | {"checked_at": None} == {
        "provider": "wwt",
        "id": "211",
        "status": "pending",
        "final": False,
        "provider_status": {"code": "accepted", "description": None},
        "retryable": False,
        "submitted_at": None,
        "sent_at": None,
        "delivered_at": None,
        "recipient": None,
        "price": None,
        "currency": None,
        "checked_at": None,
        "details": {"wwt_id": None, "reference": None},
    }


@pytest.mark.parametrize("price", ["abc", "NaN", True, [1]])
def test_unreadable_price_is_dropped_not_guessed(price: object):
    assert parse_response("211", success(price=price), 200).price is None


def test_bad_times_are_dropped():
    report = parse_response("211", success(time_in="17/01/2017", time_sent="2017-01-17T09:11:42Z"), 200)
    assert (report.submitted_at, report.sent_at) == (None, None)


def test_checked_at_defaults_to_now():
    before = datetime.now(UTC)
    report = parse_response("211", fixture("success_delivered.json"), 200)
    assert before <= report.checked_at <= datetime.now(UTC) + timedelta(seconds=1)


# ---- validation ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "211", "00042", "9" * 20])
def test_good_ids(value: str):
    assert validate_id(value) == value


@pytest.mark.parametrize("value", ["12a", "", "-1", "+1", " 1", "1 ", "1.0", "9" * 21, "١٢", "1e3", None, 12])
def test_bad_ids_are_rejected(value: object):
    with pytest.raises(InvalidRequest, match="1 to 20 decimal digits"):
        validate_id(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["a", "ext19", "ABCxyz0123", "A" * 32])
def test_good_references(value: str):
    assert validate_reference(value) == value


@pytest.mark.parametrize("value", ["", "A" * 33, "ab-c", "äb", "ab c", "ab_c", "ab/c", "ab%2F", None])
def test_bad_references_are_rejected(value: object):
    with pytest.raises(InvalidRequest, match="1 to 32 characters"):
        validate_reference(value)  # type: ignore[arg-type]


# ---- credentials -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [{"api_key": "live_abc"}, '{"api_key": "live_abc"}', b'{"api_key": "live_abc"}'])
def test_credentials_from_secret(value: object):
    assert WwtCredentials.from_secret(value, "wwt/creds") == WwtCredentials(api_key="live_abc")


@pytest.mark.parametrize(
    "value",
    [{}, {"api_key": ""}, {"api_key": "  "}, {"api_key": 123}, {"key": "live_abc"}, ["live_abc"], "live_abc_not_json", None],
)
def test_bad_secret_names_the_secret_never_the_value(value: object):
    with pytest.raises(CredentialsError) as caught:
        WwtCredentials.from_secret(value, "wwt/creds")
    assert "wwt/creds" in caught.value.message
    assert "live_abc" not in str(caught.value.to_body())


def test_credentials_repr_hides_the_key():
    assert "live_abc" not in repr(WwtCredentials(api_key="live_abc"))


def test_a_key_with_a_newline_is_refused_it_would_split_the_header():
    with pytest.raises(CredentialsError, match="cannot carry"):
        WwtCredentials.from_secret({"api_key": "live_abc\r\nX-Evil: 1"}, "wwt/creds")


# ---- what the API answers for each failure: the whole error body, not just its type -------------------
# A wrong provider code, description or HTTP status would reach our callers unnoticed by a type check.
def error_body(message: str, code: str | None = None, description: str | None = None, **http_status: int) -> dict:
    details = {"provider": "wwt", "provider_code": code, "provider_description": description, **http_status}
    return {"error": {"code": "provider_error", "message": message, "details": details}}


def auth_body(message: str, code: str | None, description: str | None) -> dict:
    details = {"provider": "wwt", "provider_code": code, "provider_description": description}
    return {"error": {"code": "credentials_error", "message": message, "details": details}}


@pytest.mark.parametrize(
    ("name", "code", "description"),
    [
        ("error_invalid_api_key.json", "1", "Invalid API key"),  # BSG's shape: error + errorDescription
        ("error_openapi_401.json", "401", "API Key not found"),  # the OpenAPI shape: code + message
    ],
)
def test_an_http_401_carries_the_code_and_description_of_either_body_shape(name: str, code: str, description: str):
    with pytest.raises(ProviderAuthError) as caught:
        parse_response("211", fixture(name), 401)
    assert caught.value.to_body() == auth_body("WWT refused the API key (HTTP 401)", code, description)


def test_an_http_403_with_a_body_that_is_not_json_has_neither_code_nor_description():
    with pytest.raises(ProviderAuthError) as caught:
        parse_response("211", b"<html>Forbidden</html>", 403)
    assert caught.value.to_body() == auth_body("WWT refused the API key (HTTP 403)", None, None)


@pytest.mark.parametrize("error", [1, "1"])
def test_invalid_api_key_inside_200_uses_bsgs_description_when_none_is_sent(error: object):
    with pytest.raises(ProviderAuthError) as caught:
        parse_response("123", body(error=error), 200)
    assert caught.value.to_body() == auth_body("WWT refused the API key (error 1)", "1", "Invalid API key")


def test_a_description_sent_with_a_code_wins_over_the_seed_text():
    with pytest.raises(ProviderAuthError) as caught:
        parse_response("123", body(error=1, errorDescription="API key revoked"), 200)
    assert caught.value.details["provider_description"] == "API key revoked"


@pytest.mark.parametrize(
    ("code", "description"),
    [(21, "an incorrect phone number"), (30, "task not found"), (36, "incorrect sender for 2WAY")],  # seed wording
)
def test_other_seed_codes_carry_the_seed_description_and_the_http_status(code: int, description: str):
    with pytest.raises(ProviderError) as caught:
        parse_response("123", body(error=code), 404)
    assert caught.value.to_body() == error_body(f"WWT answered error {code}", str(code), description, http_status=404)


@pytest.mark.parametrize(
    ("code", "description"),
    [(22, "the external ID of the SMS request is missing"), (24, "invalid query payload"), (27, "incorrect external SMS ID")],
)
def test_codes_for_a_malformed_request_say_the_request_was_ours(code: int, description: str):
    with pytest.raises(ProviderError) as caught:
        parse_response("123", body(error=str(code)), 200)
    message = f"WWT rejected a request we had validated (error {code}): a bug on our side or a change at WWT"
    assert caught.value.to_body() == error_body(message, str(code), description, http_status=200)


def test_an_undocumented_code_is_a_provider_error_without_a_description():
    with pytest.raises(ProviderError) as caught:
        parse_response("123", body(error=99), 200)
    assert caught.value.to_body() == error_body("WWT answered error 99", "99", None, http_status=200)


@pytest.mark.parametrize("error", ["abc", 1.5, 20.0, True, False, [0], {"code": 0}])
def test_an_error_code_that_is_not_an_integer_is_refused_whole(error: object):
    # A JSON `true` is not error 1 (an auth failure) and `false` is not 0 (success): the seed's codes are integers.
    with pytest.raises(ProviderError) as caught:
        parse_response("123", body(error=error, status="delivered"), 200)
    assert caught.value.to_body() == error_body("WWT answered with an error code that is not an integer", http_status=200)


@pytest.mark.parametrize("payload", [b"", b"[]", b"null", b'"delivered"', b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_a_provider_error_with_the_http_status(payload: bytes):
    with pytest.raises(ProviderError) as caught:
        parse_response("123", payload, 200)
    assert caught.value.to_body() == error_body("WWT answered with a body that is not a JSON object", http_status=200)


@pytest.mark.parametrize("http_status", [199, 300, 404])
def test_error_0_outside_2xx_is_a_contradiction_not_a_report(http_status: int):
    with pytest.raises(ProviderError) as caught:
        parse_response("211", fixture("success_delivered.json"), http_status)
    assert caught.value.to_body() == error_body(f"WWT answered HTTP {http_status} with error 0", "0", http_status=http_status)


@pytest.mark.parametrize("http_status", [200, 299])
def test_error_0_anywhere_in_2xx_is_read(http_status: int):
    assert parse_response("211", fixture("success_delivered.json"), http_status).status is Status.DELIVERED


@pytest.mark.parametrize(
    ("payload", "http_status"),
    [
        ({"status": "delivered"}, 300),  # no error field: read only inside 2xx
        ({"status": "delivered"}, 404),
        ({"status": 4}, 200),  # nor when the status is not a string
        ({"errorDescription": "No errors"}, 200),
    ],
)
def test_a_body_without_error_code_is_read_only_when_it_looks_like_a_success(payload: dict, http_status: int):
    with pytest.raises(ProviderError) as caught:
        parse_response("211", json.dumps(payload).encode(), http_status)
    assert caught.value.to_body() == error_body("WWT answered without an error code or status", http_status=http_status)


def test_a_body_without_error_code_keeps_the_requested_key_as_id():
    report = parse_response("extid19", success(error=..., errorDescription=...), 299)
    assert (report.id, report.status) == ("extid19", Status.DELIVERED)


@pytest.mark.parametrize("status", [..., "", "   ", None])
def test_success_without_a_status_is_a_provider_error_with_code_0_and_the_description(status: object):
    with pytest.raises(ProviderError) as caught:
        parse_response("211", success(status=status), 200)
    assert caught.value.to_body() == error_body("WWT answered success without a status", "0", "No errors")


def test_empty_strings_become_null_not_empty_values():
    report = parse_response("211", success(currency="", msisdn="", reference="", id=""), 200)
    assert (report.currency, report.recipient) == (None, None)
    assert report.details == {"wwt_id": None, "reference": None}


# ---- what validation errors say ----------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "shown"), [("12a", "12a"), (12, "12"), (None, "None"), ("7" * 100, "7" * 64)])
def test_a_rejected_id_is_shown_as_sent_and_cut_at_64_characters(value: object, shown: str):
    with pytest.raises(InvalidRequest) as caught:
        validate_id(value)  # type: ignore[arg-type]
    assert caught.value.to_body() == {
        "error": {"code": "invalid_request", "message": "a WWT message id must be 1 to 20 decimal digits", "details": {"id": shown}}
    }


@pytest.mark.parametrize(("value", "shown"), [("ab-c", "ab-c"), (None, "None"), ("a" * 65, "a" * 64)])
def test_a_rejected_reference_is_shown_as_sent_and_cut_at_64_characters(value: object, shown: str):
    with pytest.raises(InvalidRequest) as caught:
        validate_reference(value)  # type: ignore[arg-type]
    message = "a WWT reference must be 1 to 32 characters of a-z, A-Z or 0-9"
    assert caught.value.to_body() == {"error": {"code": "invalid_request", "message": message, "details": {"reference": shown}}}


def test_credentials_repr_is_a_fixed_mask():
    assert repr(WwtCredentials(api_key="live_abc")) == "WwtCredentials(api_key=***)"


# ---- the request the client sends (a recording stand-in for HttpClient) ----------------------------------------
@pytest.mark.parametrize(
    ("base_url", "root"),
    [
        ("https://api.wwt.world", "https://api.wwt.world"),
        ("https://api.wwt.world/", "https://api.wwt.world"),
        ("https://gw.example/WWTX/", "https://gw.example/WWTX"),  # a gateway prefix is kept whole: only the slash goes
    ],
)
def test_client_gets_the_documented_paths_with_the_key_header(base_url: str, root: str):
    http = RecordingHttp(200, fixture("success_delivered.json"))
    client = WwtClient(http, base_url, WwtCredentials(api_key="live_abc"), "X-API-KEY")  # type: ignore[arg-type]

    assert client.by_id("211").id == "211"
    assert client.by_reference("ext19").id == "ext19"
    headers = {"X-API-KEY": "live_abc", "Accept": "application/json"}
    assert http.calls == [
        ("GET", f"{root}/rest/sms/211", headers, None),
        ("GET", f"{root}/rest/sms/reference/ext19", headers, None),
    ]  # GETs: no body


def test_client_reads_the_http_status_of_the_answer():
    http = RecordingHttp(404, fixture("success_delivered.json"))
    with pytest.raises(ProviderError) as caught:
        WwtClient(http, "https://api.wwt.world", WwtCredentials(api_key="k"), "X-API-KEY").by_id("211")  # type: ignore[arg-type]
    assert caught.value.details["http_status"] == 404

"""Parsing Wooxy `/v3/sms/info` answers: the seed's example bodies verbatim, variants, and every documented
error string. No network."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sms_status.errors import CredentialsError, InvalidRequest, ProviderAuthError, ProviderError, ProviderUnavailable
from sms_status.model import Provider, Status
from sms_status.providers.wooxy import (
    ERROR_RULES,
    MAX_IDS_PER_REQUEST,
    WooxyCredentials,
    classify_error,
    parse_response,
    validate_ids,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "wooxy"
CHECKED_AT = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
TOKEN = "tok-3f9a8c77"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(ids: list[str], body: bytes | dict, http_status: int = 200):
    return parse_response(ids, body, http_status, CHECKED_AT)


# ---- the seed's examples, verbatim ---------------------------------------------------------------
def test_seed_response_with_matching_ids():
    ids = ["5d91537bd132fdf45916520a", "5bc0a73d19b6051f963023c2", "5bc0a73d19b6051f963023c3"]

    delivered, spaced_null, null = parse(ids, fixture("info_response.json"))

    assert delivered.to_dict() == {
        "provider": "wooxy",
        "id": "5d91537bd132fdf45916520a",
        "status": "delivered",
        "final": True,
        "provider_status": {"code": "delivered", "description": None},
        "retryable": False,
        "submitted_at": "2019-09-30T00:59:39Z",
        "sent_at": None,
        "delivered_at": None,
        "recipient": "+15555555",
        "price": None,
        "currency": None,
        "checked_at": "2024-03-01T12:00:00Z",
    }
    # The key "5 bc0a73d19b6051f963023c2" (with a space) still answers 5bc0a73d19b6051f963023c2.
    assert spaced_null.id == "5bc0a73d19b6051f963023c2"
    assert spaced_null.status is Status.NOT_FOUND
    assert spaced_null.final is True
    assert (spaced_null.provider_status.code, spaced_null.provider_status.description) == (
        "not_found",
        "SMS 5bc0a73d19b6051f963023c2 not found",
    )
    assert null.status is Status.NOT_FOUND
    assert null.provider_status.description == "SMS 5bc0a73d19b6051f963023c3 not found"


def test_seed_request_ids_against_seed_response():
    # The seed's request asks for "...dsf..." while its response answers "...fdf...": the requested id is
    # in neither data nor errors, so it is answered as unknown (ask again), never dropped.
    ids = json.loads(fixture("info_request.json"))["ids"]

    reports = parse(ids, fixture("info_response.json"))

    assert [r.id for r in reports] == ids
    assert reports[0].status is Status.UNKNOWN
    assert reports[0].final is False
    assert reports[0].provider_status.code == "not_mentioned"
    assert "did not mention" in reports[0].provider_status.description
    assert [r.status for r in reports[1:]] == [Status.NOT_FOUND, Status.NOT_FOUND]


def test_seed_method_error_is_a_provider_error_carrying_the_raw_string():
    with pytest.raises(ProviderError) as caught:
        parse(["x"], fixture("method_error.json"), 400)

    error = caught.value
    assert type(error) is ProviderError
    assert error.provider_code == "unknown_error"
    assert error.provider_description == "Error description text"
    assert error.details["errors"] == ["Error description text"]
    assert error.details["http_status"] == 400
    assert "Error description text" in error.message


def test_message_text_never_appears_in_any_report():
    bodies = {
        "info_response.json": ["5d91537bd132fdf45916520a", "5bc0a73d19b6051f963023c2"],
        "info_response_all_statuses.json": [f"aaaaaaaaaaaaaaaaaaaaaa0{n}" for n in range(1, 10)],
    }
    for name, ids in bodies.items():
        texts = [entry["text"] for entry in json.loads(fixture(name))["data"].values() if entry]
        serialized = json.dumps([r.to_dict() for r in parse(ids, fixture(name))])
        assert texts
        for text in texts:
            assert text not in serialized
        assert "apiVar1Val" not in serialized
        assert "Secret text" not in serialized


# ---- variants ------------------------------------------------------------------------------------
def test_every_status_in_one_answer_in_request_order():
    ids = [f"aaaaaaaaaaaaaaaaaaaaaa0{n}" for n in (9, 8, 7, 6, 5, 4, 3, 2, 1)]

    reports = parse(ids, fixture("info_response_all_statuses.json"))

    assert [r.id for r in reports] == ids
    assert [(r.status, r.final) for r in reports] == [
        (Status.UNKNOWN, False),  # 09: not mentioned at all
        (Status.NOT_FOUND, True),  # 08: null + "not found"
        (Status.UNKNOWN, False),  # 07: "paused" is undocumented
        (Status.FAILED, True),  # 06: under a spaced key, matched by its id field
        (Status.UNDELIVERED, True),
        (Status.DELIVERED, True),
        (Status.SENT, False),
        (Status.PENDING, False),
        (Status.PENDING, False),
    ]
    assert reports[2].provider_status.code == "paused"  # the raw value is kept, never guessed
    assert reports[3].recipient == "+15550000006"
    assert reports[3].submitted_at == datetime(2024, 3, 1, 10, 0, 5, tzinfo=UTC)
    assert all(r.provider is Provider.WOOXY and r.checked_at == CHECKED_AT for r in reports)


def test_data_object_matched_by_id_field_when_key_differs():
    body = {"result": True, "data": {"some-other-key": {"id": "abc123", "status": "sent"}}, "errors": []}

    (report,) = parse(["abc123"], body)

    assert report.status is Status.SENT


def test_data_object_matched_by_key_when_it_has_no_id_field():
    body = {"result": True, "data": {"abc123": {"status": "Delivered", "createdAt": "garbage"}}}

    (report,) = parse(["abc123"], body)

    assert report.status is Status.DELIVERED
    assert report.provider_status.code == "Delivered"
    assert report.submitted_at is None  # junk dates are dropped, not guessed
    assert report.recipient is None


def test_spaced_keys_match_without_id_field_or_error_string():
    body = {"result": True, "data": {"a bc 123": {"status": "sent"}, "5 bc0a73d19b6051f963023c2": None}, "errors": []}

    sent, missing = parse(["abc123", "5bc0a73d19b6051f963023c2"], body)

    assert sent.status is Status.SENT
    assert missing.status is Status.NOT_FOUND


def test_id_field_wins_over_a_key_naming_another_id():
    body = {"result": True, "data": {"m1": {"id": "m2", "status": "delivered"}, "m2": {"id": "m1", "status": "failed"}}}

    m1, m2 = parse(["m1", "m2"], body)

    assert (m1.status, m2.status) == (Status.FAILED, Status.DELIVERED)


def test_not_found_error_without_a_data_entry():
    body = {"result": True, "data": {}, "errors": ["SMS abc123 not found"]}

    (report,) = parse(["abc123"], body)

    assert report.status is Status.NOT_FOUND
    assert report.provider_status.description == "SMS abc123 not found"


def test_null_entry_without_an_error_string():
    (report,) = parse(["abc123"], {"result": True, "data": {"abc123": None}, "errors": []})

    assert report.status is Status.NOT_FOUND
    assert report.provider_status.code == "not_found"


def test_php_empty_data_array_is_read_as_no_data():
    ids = ["5bc0a73d19b6051f963023c2", "5bc0a73d19b6051f963023c9"]

    found, silent = parse(ids, fixture("info_response_empty_data_array.json"))

    assert found.status is Status.NOT_FOUND
    assert silent.status is Status.UNKNOWN


def test_errors_with_result_true_do_not_fail_the_call():
    # The official PHP SDK throws errors[0] whenever errors is non-empty; one unknown id must not lose the rest.
    body = {
        "result": True,
        "data": {"good": {"id": "good", "status": "delivered"}, "bad": None},
        "errors": ["SMS bad not found", "something odd about weird-id"],
    }

    good, bad, weird = parse(["good", "bad", "weird-id"], body)

    assert good.status is Status.DELIVERED
    assert bad.status is Status.NOT_FOUND
    assert weird.status is Status.UNKNOWN
    assert weird.final is False
    assert weird.provider_status.description == "something odd about weird-id"


def test_result_false_with_only_not_found_errors_still_answers_per_id():
    body = {"result": False, "errors": ["SMS a1 not found", "SMS a2 not found"]}

    reports = parse(["a1", "a2"], body)

    assert [r.status for r in reports] == [Status.NOT_FOUND, Status.NOT_FOUND]


def test_body_may_be_an_already_decoded_dict():
    (report,) = parse(["x1"], {"result": True, "data": {"x1": {"id": "x1", "status": "queued"}}})

    assert report.status is Status.PENDING


# ---- bodies we cannot read -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body>502 Bad Gateway</body></html>",
        b'{"result":true,"data":{"5d91537bd132fdf45916520a":{"id":"5d9153',
        b"\xff\xfe not utf-8",
        b"[" * 100_000,
        b'["result", true]',
        b'{"data": {}}',
        b'{"result": "true", "data": {}}',
        b'{"result": true}',
        b'{"result": true, "data": "none"}',
        b'{"result": true, "data": ["x"]}',
        b'{"result": true, "data": {}, "errors": "SMS x not found"}',
        b'{"result": false}',
        b'{"result": false, "errors": []}',
    ],
)
def test_unreadable_or_wrong_shape_is_a_provider_error(body: bytes):
    with pytest.raises(ProviderError) as caught:
        parse(["x"], body, 200)

    assert type(caught.value) is ProviderError
    assert caught.value.details["http_status"] == 200


# ---- the documented method errors ----------------------------------------------------------------
AUTH_ERRORS = [
    ("Invalid authorization token!", "invalid_token"),
    (f"no matches found for access token {TOKEN}", "token_not_found"),
    (f"access token check failed for key/secret 42/{TOKEN}", "token_check_failed"),
    ("access token check failed for key\\/secret 42\\/abc", "token_check_failed"),
    ("user 42 not enabled", "user_not_enabled"),
    ("no data found for key 42", "no_data_for_key"),
]
REQUEST_ERRORS = [
    ("Argument ids must be an array of strings", "ids_not_array"),
    ("Argument ids can not be empty", "ids_empty"),
    ("each id must be a non-empty string", "id_empty"),
    ("ids count must be less or equal 100", "too_many_ids"),
    ("Bad Request", "bad_request"),
    ("Argument ids required", "argument_required"),
    ("Argument access_token required", "argument_required"),
]


@pytest.mark.parametrize(("text", "code"), AUTH_ERRORS)
def test_auth_error_strings(text: str, code: str):
    with pytest.raises(ProviderAuthError) as caught:
        parse_response(["x"], {"result": False, "errors": [text]}, 401, CHECKED_AT, access_token=TOKEN)

    error = caught.value
    assert isinstance(error, CredentialsError)  # the API answers 503 credentials_error
    assert error.details["provider_code"] == code
    assert TOKEN not in json.dumps(error.to_body())  # strings that echo the token are never passed on


@pytest.mark.parametrize(("text", "code"), REQUEST_ERRORS)
def test_argument_error_strings(text: str, code: str):
    with pytest.raises(ProviderError) as caught:
        parse(["x"], {"result": False, "errors": [text]}, 400)

    error = caught.value
    assert type(error) is ProviderError
    assert error.provider_code == code
    assert error.provider_description == text
    assert error.details["http_status"] == 400


def test_internal_server_error_is_unavailable():
    with pytest.raises(ProviderUnavailable) as caught:
        parse(["x"], {"result": False, "errors": ["Internal server error"]}, 200)

    assert caught.value.details["http_status"] == 200


def test_seed_invalid_token_fixture():
    with pytest.raises(ProviderAuthError):
        parse(["x"], fixture("invalid_token.json"), 200)


def test_seed_too_many_ids_fixture():
    with pytest.raises(ProviderError, match="ids count must be less or equal 100"):
        parse(["x"], fixture("too_many_ids.json"), 400)


def test_auth_error_wins_over_other_strings():
    body = {"result": False, "errors": ["Bad Request", "Internal server error", "Invalid authorization token!"]}

    with pytest.raises(ProviderAuthError):
        parse(["x"], body)


def test_unknown_error_strings_are_carried_raw_with_the_token_blanked():
    body = {"result": False, "errors": ["quota exceeded", f"weird {TOKEN} echo"]}

    with pytest.raises(ProviderError) as caught:
        parse_response(["x"], body, 200, CHECKED_AT, access_token=TOKEN)

    assert caught.value.details["errors"] == ["quota exceeded", "weird *** echo"]
    assert TOKEN not in json.dumps(caught.value.to_body())


def test_error_rules_cover_every_documented_string():
    documented = [text for text, _ in AUTH_ERRORS + REQUEST_ERRORS] + ["Internal server error", "SMS abc not found"]
    assert all(classify_error(text).kind is not None for text in documented)
    assert len({rule.code for rule in ERROR_RULES}) == len(ERROR_RULES)


def test_not_found_rule_extracts_the_id():
    assert classify_error("SMS 5bc0a73d19b6051f963023c2 not found").id == "5bc0a73d19b6051f963023c2"


# ---- credentials and id validation ---------------------------------------------------------------
def test_credentials_from_secret():
    assert WooxyCredentials.from_secret({"access_token": TOKEN}, "wooxy/creds").access_token == TOKEN
    assert WooxyCredentials.from_secret(json.dumps({"access_token": TOKEN}), "wooxy/creds").access_token == TOKEN
    assert TOKEN not in repr(WooxyCredentials(TOKEN))


@pytest.mark.parametrize(
    "value",
    [
        None,
        "not json",
        [],
        {},
        {"access_token": ""},
        {"access_token": "  "},
        {"access_token": 42},
        {"token": TOKEN},
        {"access_token": "a\r\nX: y"},
    ],
)
def test_bad_secret_names_the_secret_never_the_value(value: object):
    with pytest.raises(CredentialsError) as caught:
        WooxyCredentials.from_secret(value, "wooxy/creds")

    body = json.dumps(caught.value.to_body())
    assert "wooxy/creds" in body
    assert "a\\r\\nX" not in body
    assert TOKEN not in body


def test_validate_ids_collapses_duplicates_in_order():
    assert validate_ids(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


@pytest.mark.parametrize("ids", ["abc", b"abc", ["ok", ""], ["ok", "  "], ["ok", None], ["ok", 5], None])
def test_validate_ids_rejects_bad_input(ids: object):
    with pytest.raises(InvalidRequest):
        validate_ids(ids)  # type: ignore[arg-type]


def test_documented_limit():
    assert MAX_IDS_PER_REQUEST == 100


def test_an_id_the_answer_does_not_mention_is_an_error_report_not_an_answer():
    body = {"result": True, "data": {}, "errors": ["rate limited for 15 ids"]}
    (report,) = parse_response(["5"], json.dumps(body).encode(), 200)
    # "5" is not named by "15": the report says Wooxy did not mention it, and that the lookup failed
    assert (report.status, report.final, report.provider_status.code) == (Status.UNKNOWN, False, "not_mentioned")
    assert report.details["error"]["code"] == "provider_error"


def test_an_error_string_naming_the_id_is_kept_as_its_description():
    body = {"result": True, "data": {}, "errors": ["SMS abc123 is being processed"]}
    (report,) = parse_response(["abc123"], json.dumps(body).encode(), 200)
    assert report.provider_status.description == "SMS abc123 is being processed"
    assert report.details["error"]["message"] == "SMS abc123 is being processed"

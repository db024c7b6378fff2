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
    WooxyClient,
    WooxyCredentials,
    classify_error,
    parse_response,
    validate_ids,
)
from tests.recording_http import RecordingHttp

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


# ---- what the API answers for each failure: the whole error body, not just its type -------------------
# A wrong provider code, description or HTTP status would reach our callers unnoticed by a type check.
def error_body(message: str, code: str | None = None, description: str | None = None, http_status: int = 200, **extra: object) -> dict:
    details = {"provider": "wooxy", "provider_code": code, "provider_description": description, "http_status": http_status, **extra}
    return {"error": {"code": "provider_error", "message": message, "details": details}}


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"<html>502 Bad Gateway</html>", "a body that is not JSON"),
        (b'["result", true]', "JSON that is not an object"),
        (b'{"result": "true", "data": {}}', "no boolean `result`"),
        (b'{"result": true}', "result:true but no `data`"),
        (b'{"result": true, "data": "none"}', "`data` that is not an object"),
        (b'{"result": true, "data": {}, "errors": "SMS x not found"}', "`errors` that is not a list"),
    ],
)
def test_a_body_we_cannot_read_says_what_was_wrong(body: bytes, what: str):
    with pytest.raises(ProviderError) as caught:
        parse(["x"], body, 502)
    assert caught.value.to_body() == error_body(f"wooxy answered with {what}", http_status=502)


def test_the_seed_invalid_token_is_a_credentials_error_with_its_code_and_text():
    with pytest.raises(ProviderAuthError) as caught:
        parse(["x"], fixture("invalid_token.json"), 401)
    details = {"provider": "wooxy", "provider_code": "invalid_token", "provider_description": "Invalid authorization token!"}
    assert caught.value.to_body() == {
        "error": {"code": "credentials_error", "message": "wooxy refused the access token", "details": details}
    }


def test_a_token_echoing_string_is_replaced_by_the_documented_template():
    with pytest.raises(ProviderAuthError) as caught:
        parse_response(["x"], {"result": False, "errors": [f"no matches found for access token {TOKEN}"]}, 401, access_token=TOKEN)
    assert caught.value.details["provider_description"] == "no matches found for access token {accessToken}"


def test_an_auth_string_keeps_its_own_text_as_description_when_it_echoes_nothing():
    with pytest.raises(ProviderAuthError) as caught:
        parse(["x"], {"result": False, "errors": ["Bad Request", "user 42 not enabled"]}, 401)
    assert (caught.value.details["provider_code"], caught.value.details["provider_description"]) == (
        "user_not_enabled",
        "user 42 not enabled",
    )


def test_internal_server_error_is_unavailable_with_the_http_status():
    with pytest.raises(ProviderUnavailable) as caught:
        parse(["x"], {"result": False, "errors": ["Internal server error"]}, 500)
    assert caught.value.to_body() == {
        "error": {
            "code": "provider_unavailable",
            "message": "wooxy reported an internal server error",
            "details": {"provider": "wooxy", "http_status": 500},
        }
    }


def test_a_rejected_request_names_the_decisive_string_and_keeps_all_of_them():
    errors = ["Argument ids can not be empty", "Bad Request"]
    with pytest.raises(ProviderError) as caught:
        parse(["x"], {"result": False, "errors": errors}, 400)
    message = "wooxy rejected the request: Argument ids can not be empty"
    description = "Argument ids can not be empty; Bad Request"
    assert caught.value.to_body() == error_body(message, "ids_empty", description, 400, errors=errors)


def test_strings_are_matched_whatever_their_case():
    with pytest.raises(ProviderError) as caught:
        parse(["x"], {"result": False, "errors": ["ARGUMENT IDS CAN NOT BE EMPTY"]}, 400)
    assert caught.value.provider_code == "ids_empty"
    assert classify_error("sms ABC not found").id == "ABC"


def test_result_false_without_errors_says_so():
    with pytest.raises(ProviderError) as caught:
        parse(["x"], {"result": False, "errors": []}, 200)
    assert caught.value.to_body() == error_body("wooxy answered result:false without errors", "unknown_error", errors=[])


def test_an_unknown_string_next_to_a_not_found_fails_the_call_with_the_unknown_code():
    errors = ["SMS x not found", "quota exceeded"]
    with pytest.raises(ProviderError) as caught:
        parse(["x"], {"result": False, "errors": errors}, 200)
    description = "SMS x not found; quota exceeded"
    assert caught.value.to_body() == error_body(f"wooxy answered with an error: {description}", "unknown_error", description, errors=errors)


def test_result_false_with_only_not_found_errors_reads_the_data_it_carries():
    body = {"result": False, "data": {"a1": {"id": "a1", "status": "sent"}}, "errors": ["SMS a2 not found"]}
    a1, a2 = parse(["a1", "a2"], body)
    assert (a1.status, a2.status) == (Status.SENT, Status.NOT_FOUND)


def test_errors_may_be_null():
    (report,) = parse(["x1"], {"result": True, "data": {"x1": {"id": "x1", "status": "sent"}}, "errors": None})
    assert report.status is Status.SENT


def test_an_empty_id_field_falls_back_to_the_key():
    body = {"result": True, "data": {"k1": {"id": "", "status": "sent"}, "k2": {"id": "", "status": "delivered"}}}
    k1, k2 = parse(["k1", "k2"], body)
    assert (k1.status, k2.status) == (Status.SENT, Status.DELIVERED)


def test_a_requested_id_with_a_space_never_takes_the_compacted_keys_answer():
    # The seed's quirk is a space added to Wooxy's key, never to the id asked: "5 bc0a" is another message than "5bc0a".
    (report,) = parse(["5 bc0a"], {"result": True, "data": {"5bc0a": {"status": "sent"}}})
    assert (report.id, report.status, report.provider_status.code) == ("5 bc0a", Status.UNKNOWN, "not_mentioned")


def test_a_null_entry_without_an_error_string_says_so():
    (report,) = parse(["abc123"], {"result": True, "data": {"abc123": None}})
    assert (report.provider_status.code, report.provider_status.description) == ("not_found", "null entry in data")
    assert report.checked_at == CHECKED_AT


@pytest.mark.parametrize("phone", ["", 15555555, None])
def test_a_phone_number_that_is_not_a_non_empty_string_is_dropped(phone: object):
    (report,) = parse(["x1"], {"result": True, "data": {"x1": {"id": "x1", "status": "sent", "phoneNumber": phone}}})
    assert report.recipient is None


def test_a_not_found_string_for_an_id_we_did_not_ask_is_not_pinned_on_another_one():
    body = {"result": True, "data": {}, "errors": ["SMS other not found", "weird about x1", "x1 again"]}
    (report,) = parse(["x1"], body)
    assert report.to_dict() == {
        "provider": "wooxy",
        "id": "x1",
        "status": "unknown",
        "final": False,
        "provider_status": {"code": "unknown_error", "description": "weird about x1; x1 again"},
        "retryable": False,
        "submitted_at": None,
        "sent_at": None,
        "delivered_at": None,
        "recipient": None,
        "price": None,
        "currency": None,
        "checked_at": "2024-03-01T12:00:00Z",
        "details": {
            "error": {
                "code": "provider_error",
                "message": "weird about x1; x1 again",
                "details": {"provider": "wooxy", "provider_code": "unknown_error", "provider_description": None},
            }
        },
    }


def test_an_id_nobody_mentions_is_an_error_report_saying_so():
    (report,) = parse(["x1"], {"result": True, "data": {}})
    assert (report.provider_status.code, report.provider_status.description) == (
        "not_mentioned",
        "wooxy did not mention this id in data or errors",
    )
    assert report.details["error"]["details"]["provider"] == "wooxy"
    assert report.checked_at == CHECKED_AT


BAD_ID = "each id must be a non-empty string of at most 128 characters, without control characters (bad positions: [1])"


@pytest.mark.parametrize(
    ("ids", "message", "details"),
    [
        ("abc", "ids must be a list of strings", None),
        (None, "ids must be a list of strings", None),
        (["ok", ""], BAD_ID, {"positions": [1]}),
    ],
)
def test_rejected_ids_say_why(ids: object, message: str, details: object):
    with pytest.raises(InvalidRequest) as caught:
        validate_ids(ids)  # type: ignore[arg-type]
    assert caught.value.to_body() == {"error": {"code": "invalid_request", "message": message, "details": details}}


# ---- the request the client sends (a recording stand-in for HttpClient) ----------------------------------------
@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("https://api.wooxy.com", "https://api.wooxy.com/v3/sms/info"),
        ("https://api.wooxy.com/", "https://api.wooxy.com/v3/sms/info"),
        ("https://gw.example/WOOX/", "https://gw.example/WOOX/v3/sms/info"),  # a gateway prefix is kept whole
    ],
)
def test_client_posts_the_ids_with_the_access_token_header(base_url: str, url: str):
    http = RecordingHttp(200, fixture("info_response.json"))
    client = WooxyClient(http, base_url, WooxyCredentials(TOKEN))  # type: ignore[arg-type]
    before = datetime.now(UTC)

    report = client.status("5d91537bd132fdf45916520a")

    assert report.status is Status.DELIVERED
    assert before <= report.checked_at <= datetime.now(UTC)
    headers = {"Access-Token": TOKEN, "Content-Type": "application/json", "Accept": "application/json"}
    assert http.calls == [("POST", url, headers, b'{"ids": ["5d91537bd132fdf45916520a"]}')]


def test_client_passes_the_http_status_and_blanks_the_token_in_errors():
    http = RecordingHttp(401, json.dumps({"result": False, "errors": [f"weird {TOKEN}"]}).encode())
    with pytest.raises(ProviderError) as caught:
        WooxyClient(http, "https://api.wooxy.com", WooxyCredentials(TOKEN)).status("x")  # type: ignore[arg-type]
    assert caught.value.details["http_status"] == 401
    assert caught.value.details["errors"] == ["weird ***"]


@pytest.mark.parametrize("own_id", ["", None, 42, ["k1"], {"id": "k1"}])
def test_an_id_field_that_is_not_a_non_empty_string_is_ignored(own_id: object):
    (report,) = parse(["k1"], {"result": True, "data": {"k1": {"id": own_id, "status": "sent"}}})
    assert report.status is Status.SENT


def test_an_id_field_is_matched_as_written_even_with_a_space():
    (report,) = parse(["a b"], {"result": True, "data": {"other": {"id": "a b", "status": "delivered"}}})
    assert report.status is Status.DELIVERED


def test_a_documented_string_that_echoes_the_token_is_blanked_too():
    with pytest.raises(ProviderAuthError) as caught:
        parse_response(["x"], {"result": False, "errors": [f"Invalid authorization token! {TOKEN}"]}, 401, access_token=TOKEN)
    assert caught.value.details["provider_description"] == "Invalid authorization token! ***"

"""OpenMarket request building and answer parsing, without a network: the seed document's bodies verbatim,
captured-style variants, hostile XML, and the credentials secret."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from defusedxml import DTDForbidden
from defusedxml.ElementTree import fromstring

from local.sandboxes.base import ENTITY_BOMB_BODY, EXTERNAL_ENTITY_BODY, HTML_BODY
from local.sandboxes.openmarket import error_reply, status_reply
from sms_status.errors import CredentialsError, InvalidRequest, ProviderAuthError, ProviderError, ProviderUnavailable
from sms_status.model import Provider, Status
from sms_status.providers.openmarket import (
    OpenMarketClient,
    OpenMarketCredentials,
    build_query,
    check_user_agent,
    parse_response,
    validate_ticket_id,
)
from tests.recording_http import RecordingHttp

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openmarket"
TICKET = "12004-0328K-1232U-18C21"
CHECKED_AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NASTY_PASSWORD = "p&ss<w>rd\"'"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# ---- answers that become reports ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "status", "final", "retryable", "code", "description"),
    [
        ("seed_accepted.xml", Status.SENT, False, False, "0", "Message successfully sent to carrier."),
        ("live_buffered_3.xml", Status.SENT, False, False, "3", "Message buffered with carrier and waiting for delivery response."),
        ("live_delivered_4.xml", Status.DELIVERED, True, False, "4", "Message successfully delivered."),
        ("compact_latin1_delivered_4.xml", Status.DELIVERED, True, False, "4", "Message d\u00e9livr\u00e9"),
        ("carrier_failed_509.xml", Status.UNDELIVERED, True, False, "509", "Carrier delivery failed"),
        ("expired_811.xml", Status.EXPIRED, True, True, "811", "Message expired by carrier"),
        ("status_without_description_581.xml", Status.UNKNOWN, False, True, "581", None),
        ("status_unknown_9999.xml", Status.UNKNOWN, False, False, "9999", "Something new"),
    ],
)
def test_status_answers_become_reports(name: str, status: Status, final: bool, retryable: bool, code: str, description: str | None) -> None:
    report = parse_response(TICKET, fixture(name), 200, checked_at=CHECKED_AT)
    assert report.provider is Provider.OPENMARKET
    assert report.id == TICKET
    assert (report.status, report.final, report.retryable) == (status, final, retryable)
    assert (report.provider_status.code, report.provider_status.description) == (code, description)


def test_seed_accepted_example_as_the_pinned_json() -> None:
    report = parse_response(TICKET, fixture("seed_accepted.xml"), 200, checked_at=CHECKED_AT)
    assert report.to_dict() == {
        "provider": "openmarket",
        "id": TICKET,
        "status": "sent",
        "final": False,
        "provider_status": {"code": "0", "description": "Message successfully sent to carrier."},
        "retryable": False,
        "submitted_at": None,  # v3 query answers carry no timestamps
        "sent_at": None,
        "delivered_at": None,
        "recipient": None,
        "price": None,
        "currency": None,
        "checked_at": "2025-03-01T12:00:00Z",
    }


def test_unknown_ticket_error_711_is_a_not_found_report() -> None:
    report = parse_response(TICKET, fixture("error_711_not_found.xml"), 404, checked_at=CHECKED_AT)
    assert (report.status, report.final) == (Status.NOT_FOUND, True)
    assert report.provider_status.code == "711"
    assert report.checked_at == CHECKED_AT


def test_non_numeric_status_code_is_kept_raw_as_unknown() -> None:
    body = b'<response><error code="0" description="No Error"/><status code="4a" description="?"/></response>'
    report = parse_response(TICKET, body, 200)
    assert (report.status, report.final, report.provider_status.code) == (Status.UNKNOWN, False, "4a")


# ---- answers that become typed errors ----------------------------------------------------------------------
def test_seed_rejected_example_is_a_provider_error_with_code_and_http_status() -> None:
    with pytest.raises(ProviderError) as caught:
        parse_response(TICKET, fixture("seed_rejected_307.xml"), 400)
    error = caught.value
    assert error.provider_code == "307"
    assert error.provider_description == "The request was an ill-formed XML document"
    assert error.details["http_status"] == 400
    assert error.http_status == 502


def test_carrier_lookup_error_is_a_provider_error() -> None:
    with pytest.raises(ProviderError) as caught:
        parse_response(TICKET, fixture("error_345_carrier_lookup.xml"), 200)
    assert caught.value.provider_code == "345"
    assert not isinstance(caught.value, ProviderAuthError)


@pytest.mark.parametrize("code", [420, 431, 432, 433, 434])
def test_auth_error_codes_raise_provider_auth_error(code: int) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        parse_response(TICKET, error_reply(403, code).body, 403)
    assert isinstance(caught.value, CredentialsError)
    assert caught.value.details["provider_code"] == str(code)


def test_auth_fixture_raises_provider_auth_error() -> None:
    with pytest.raises(ProviderAuthError):
        parse_response(TICKET, fixture("error_420_auth.xml"), 403)


def test_demo_access_required_430_is_not_a_credentials_problem() -> None:
    with pytest.raises(ProviderError) as caught:
        parse_response(TICKET, error_reply(403, 430, "Demo/commercial access required").body, 403)
    assert caught.value.provider_code == "430"


@pytest.mark.parametrize(("name_or_code", "http_status"), [("error_1010_temporary.xml", 200), (1020, 400)])
def test_temporary_platform_errors_are_provider_unavailable(name_or_code: str | int, http_status: int) -> None:
    body = fixture(name_or_code) if isinstance(name_or_code, str) else error_reply(http_status, name_or_code).body
    with pytest.raises(ProviderUnavailable):
        parse_response(TICKET, body, http_status)


@pytest.mark.parametrize(
    ("body", "http_status"),
    [
        (fixture("accepted_without_status.xml"), 200),  # error 0 but no status element
        (fixture("truncated.xml"), 200),
        (fixture("seed_accepted.xml"), 400),  # "no error" inside a rejected response
        (b"", 200),
        (b'{"error": 0}', 200),
        (HTML_BODY, 200),  # well-formed, but an HTML page from a proxy
        (b"<html><body>Forbidden", 403),
        (b"<response><status code='4'/></response>", 200),  # no error element
        (b"<response><error description='x'/><status code='4'/></response>", 200),  # error without code
        (b"<response><error code='zero'/><status code='4'/></response>", 200),
        (b"<response><error code='0'/><status code=''/></response>", 200),
        (b"<request><error code='0'/><status code='4'/></request>", 200),  # not a response document
    ],
)
def test_unreadable_answers_are_provider_errors(body: bytes, http_status: int) -> None:
    with pytest.raises(ProviderError):
        parse_response(TICKET, body, http_status)


@pytest.mark.parametrize(
    "body",
    [
        ENTITY_BOMB_BODY,
        EXTERNAL_ENTITY_BODY,
        # An external DTD and a parameter entity: refused as DTDs, never fetched or expanded.
        b'<?xml version="1.0"?><!DOCTYPE response SYSTEM "http://198.51.100.1/evil.dtd"><response><error code="0"/></response>',
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><response><error code="0"/></response>',
        b'<?xml version="1.0"?><!DOCTYPE response [<!ELEMENT response ANY>]><response><error code="0"/><status code="4"/></response>',
    ],
)
def test_dtds_entity_bombs_and_external_entities_are_refused(body: bytes) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_response(TICKET, body, 200)
    # Refused at the DOCTYPE itself, before any entity is declared, let alone expanded or fetched.
    assert isinstance(caught.value.__cause__, DTDForbidden)


# ---- the sandbox speaks the same dialect -------------------------------------------------------------------
def test_sandbox_replies_parse_like_the_seed_examples() -> None:
    reply = status_reply(509, "Carrier delivery failed")
    assert reply.body.startswith(b'<?xml version="1.0" ?>\n<response version="3.0" protocol="wmp" type="query">\n<error code="0"')
    report = parse_response(TICKET, reply.body, reply.status)
    assert (report.status, report.provider_status.code) == (Status.UNDELIVERED, "509")


# ---- building the query ------------------------------------------------------------------------------------
def test_query_escapes_every_special_character_and_round_trips() -> None:
    credentials = OpenMarketCredentials("acc&<>\"'", NASTY_PASSWORD + "\t\n")
    body = build_query(credentials, "T&<>\"'1", "XML/SMS/1.0.0")

    assert body.startswith(b'<?xml version="1.0"?>\n<request version="3.0" protocol="wmp" type="query">')
    assert b"<w>" not in body  # never raw
    assert b"p&ss" not in body
    assert b"p&amp;ss&lt;w&gt;rd&quot;'" in body
    root = fromstring(body, forbid_dtd=True)
    assert [child.tag for child in root] == ["user", "account", "ticket"]
    assert root.find("user").get("agent") == "XML/SMS/1.0.0"
    assert root.find("account").get("id") == "acc&<>\"'"
    assert root.find("account").get("password") == NASTY_PASSWORD + "\t\n"  # whitespace survives attribute normalization
    assert root.find("ticket").get("id") == "T&<>\"'1"


def test_query_matches_the_seed_request_shape() -> None:
    seed = fromstring(fixture("seed_request.xml"), forbid_dtd=True)
    ours = fromstring(build_query(OpenMarketCredentials("123-456-789-12345", "password here"), TICKET, "XML/SMS/1.0.0"))
    assert (ours.tag, ours.attrib) == (seed.tag, seed.attrib)
    assert [(c.tag, c.attrib) for c in ours] == [(c.tag, c.attrib) for c in seed]


def test_user_agent_is_limited_to_60_characters() -> None:
    credentials = OpenMarketCredentials("a", "b")
    assert b'agent="' + b"x" * 60 + b'"' in build_query(credentials, TICKET, "x" * 60)
    with pytest.raises(ValueError, match="60"):
        build_query(credentials, TICKET, "x" * 61)
    with pytest.raises(ValueError, match="user agent"):
        build_query(credentials, TICKET, "")


@pytest.mark.parametrize("ticket", ["", "   ", "x" * 65, "T\n1", "T\x001", "T\x7f", "T\u0085", "T\ufffe", 42, None])
def test_bad_ticket_ids_are_invalid_requests(ticket: object) -> None:
    with pytest.raises(InvalidRequest):
        validate_ticket_id(ticket)
    if isinstance(ticket, str):
        with pytest.raises(InvalidRequest):
            build_query(OpenMarketCredentials("a", "b"), ticket, "XML/SMS/1.0.0")


@pytest.mark.parametrize("ticket", [TICKET, "x" * 64, "a&b<c>", "\u00e9t\u00e9-1"])
def test_good_ticket_ids_are_accepted_as_given(ticket: str) -> None:
    assert validate_ticket_id(ticket) == ticket


# ---- the credentials secret --------------------------------------------------------------------------------
def test_secret_with_both_keys_gives_credentials() -> None:
    credentials = OpenMarketCredentials.from_secret(
        {"account_id": "000-111", "password": NASTY_PASSWORD, "extra": 1}, "sms-status/openmarket"
    )
    assert (credentials.account_id, credentials.password) == ("000-111", NASTY_PASSWORD)
    assert NASTY_PASSWORD not in repr(credentials)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "not-an-object",
        ["account_id", "password"],
        {},
        {"account_id": "000-111"},
        {"password": "SuperSecret-42"},
        {"account_id": "", "password": "SuperSecret-42"},
        {"account_id": "000-111", "password": ""},
        {"account_id": "000-111", "password": "   "},
        {"account_id": 111, "password": "SuperSecret-42"},
        {"account_id": "000-111", "password": 4242},
        {"account_id": "000-111", "password": "SuperSecret-42\x00"},
    ],
)
def test_unusable_secrets_raise_credentials_error_naming_the_secret_only(value: object) -> None:
    with pytest.raises(CredentialsError) as caught:
        OpenMarketCredentials.from_secret(value, "sms-status/openmarket")
    assert "sms-status/openmarket" in caught.value.message
    assert "SuperSecret" not in caught.value.message
    assert "SuperSecret" not in str(caught.value.details)


# ---- what the API answers for each failure: the whole error body, not just its type -------------------------
# A wrong provider code, description or HTTP status would reach our callers unnoticed by a type check.
def error_body(message: str, code: str | None = None, description: str | None = None, **http_status: int) -> dict:
    details = {"provider": "openmarket", "provider_code": code, "provider_description": description, **http_status}
    return {"error": {"code": "provider_error", "message": message, "details": details}}


def test_the_seed_rejection_is_the_whole_error_body() -> None:
    with pytest.raises(ProviderError) as caught:
        parse_response(TICKET, fixture("seed_rejected_307.xml"), 400)
    message = "OpenMarket rejected the query (error code 307)"
    assert caught.value.to_body() == error_body(message, "307", "The request was an ill-formed XML document", http_status=400)


def test_the_auth_fixture_is_a_credentials_error_with_code_and_description() -> None:
    with pytest.raises(ProviderAuthError) as caught:
        parse_response(TICKET, fixture("error_420_auth.xml"), 403)
    details = {"provider": "openmarket", "provider_code": "420", "provider_description": "Invalid subscriber ID or password"}
    assert caught.value.to_body() == {
        "error": {"code": "credentials_error", "message": "OpenMarket refused the account id or password", "details": details}
    }


def test_a_temporary_error_is_unavailable_with_the_http_status() -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        parse_response(TICKET, fixture("error_1010_temporary.xml"), 200)
    assert caught.value.to_body() == {
        "error": {
            "code": "provider_unavailable",
            "message": "OpenMarket reported a temporary error (code 1010)",
            "details": {"provider": "openmarket", "http_status": 200},
        }
    }


def test_the_711_report_keeps_the_providers_description() -> None:
    report = parse_response(TICKET, fixture("error_711_not_found.xml"), 404, checked_at=CHECKED_AT)
    assert report.to_dict() == {
        "provider": "openmarket",
        "id": TICKET,
        "status": "not_found",
        "final": True,
        "provider_status": {"code": "711", "description": "The ticket was not found or is more than 5 days old"},
        "retryable": False,
        "submitted_at": None,
        "sent_at": None,
        "delivered_at": None,
        "recipient": None,
        "price": None,
        "currency": None,
        "checked_at": "2025-03-01T12:00:00Z",
    }


@pytest.mark.parametrize("http_status", [199, 300, 400])
def test_no_error_outside_2xx_is_a_contradiction(http_status: int) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_response(TICKET, fixture("seed_accepted.xml"), http_status)
    message = f"OpenMarket answered HTTP {http_status} with error code 0"
    assert caught.value.to_body() == error_body(message, "0", "No Error", http_status=http_status)


@pytest.mark.parametrize("http_status", [200, 299])
def test_no_error_anywhere_in_2xx_is_read(http_status: int) -> None:
    assert parse_response(TICKET, fixture("seed_accepted.xml"), http_status).provider_status.code == "0"


@pytest.mark.parametrize(
    "body",
    [
        fixture("accepted_without_status.xml"),
        b'<response><error code="0" description="No Error"/><status code=" " description="x"/></response>',
    ],
)
def test_accepted_without_a_status_code_is_a_provider_error_with_code_0(body: bytes) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_response(TICKET, body, 200)
    message = "OpenMarket accepted the query but sent no status code"
    assert caught.value.to_body() == error_body(message, "0", "No Error", http_status=200)


@pytest.mark.parametrize(
    "body",
    [
        b"<response><status code='4'/></response>",  # no error element
        b"<response><error description='x'/><status code='4'/></response>",  # an error element without a code
        b"<response><error code='zero'/><status code='4'/></response>",
        b"<response><error code=''/><status code='4'/></response>",
    ],
)
def test_an_answer_without_a_readable_error_code_is_a_provider_error(body: bytes) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_response(TICKET, body, 200)
    assert caught.value.to_body() == error_body("OpenMarket answered without a readable error code", http_status=200)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (fixture("truncated.xml"), "a body that is not well-formed XML"),
        (b"", "a body that is not well-formed XML"),
        (ENTITY_BOMB_BODY, "a DTD or entity declaration"),
        (EXTERNAL_ENTITY_BODY, "a DTD or entity declaration"),
    ],
)
def test_a_body_we_refuse_to_parse_says_why(body: bytes, reason: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_response(TICKET, body, 502)
    assert caught.value.to_body() == error_body(f"OpenMarket answered HTTP 502 with {reason}", http_status=502)


def test_xml_that_is_not_a_wmp_response_is_a_provider_error() -> None:
    with pytest.raises(ProviderError) as caught:
        parse_response(TICKET, HTML_BODY, 200)
    assert caught.value.to_body() == error_body("OpenMarket answered HTTP 200 with XML that is not a wmp response", http_status=200)


# ---- what validation errors say ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ticket", "message"),
    [
        ("", "an OpenMarket ticket id must be a non-empty string"),
        (None, "an OpenMarket ticket id must be a non-empty string"),
        ("x" * 65, "an OpenMarket ticket id has at most 64 characters"),
        ("T\t1", "an OpenMarket ticket id cannot contain control characters"),
        ("T\ufffe", "an OpenMarket ticket id cannot contain control characters"),
    ],
)
def test_a_rejected_ticket_id_says_why(ticket: object, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_ticket_id(ticket)
    assert caught.value.to_body() == {"error": {"code": "invalid_request", "message": message, "details": None}}


@pytest.mark.parametrize("agent", ["XML/SMS\t1.0.0", "XML/SMS/1.0.0\x7f", "XML/SMS/\ufffe", "XML/SMS/\x00"])
def test_a_user_agent_with_a_control_or_non_xml_character_is_refused(agent: str) -> None:
    # \t and \x7f are valid XML but control characters; \ufffe is neither: each check must refuse on its own.
    with pytest.raises(ValueError, match="1 to 60 printable characters"):
        check_user_agent(agent)


def test_non_ascii_ticket_ids_go_out_as_utf8_text() -> None:
    body = build_query(OpenMarketCredentials("a", "b"), "\u00e9t\u00e9-1", "XML/SMS/1.0.0")
    assert '<ticket id="\u00e9t\u00e9-1" />'.encode() in body


# ---- the request the client sends (a recording stand-in for HttpClient) ----------------------------------------
@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("https://smsc.openmarket.com", "https://smsc.openmarket.com/wmp"),
        ("https://smsc.openmarket.com/", "https://smsc.openmarket.com/wmp"),
        ("https://gw.example/OMX/", "https://gw.example/OMX/wmp"),  # a gateway prefix is kept whole: only the slash goes
    ],
)
def test_client_posts_the_query_to_wmp_as_text_xml(base_url: str, url: str) -> None:
    http = RecordingHttp(200, fixture("live_delivered_4.xml"))
    credentials = OpenMarketCredentials("123-456-789-12345", "password here")
    report = OpenMarketClient(http, base_url, credentials, "XML/SMS/1.0.0").status(TICKET)  # type: ignore[arg-type]

    assert (report.id, report.status) == (TICKET, Status.DELIVERED)
    assert http.calls == [
        (
            "POST",
            url,
            {"Content-Type": "text/xml", "Accept": "text/xml"},
            build_query(credentials, TICKET, "XML/SMS/1.0.0"),
        )
    ]


def test_client_reads_the_http_status_of_the_answer() -> None:
    http = RecordingHttp(400, fixture("seed_rejected_307.xml"))
    client = OpenMarketClient(http, "https://smsc.openmarket.com", OpenMarketCredentials("a", "b"), "XML/SMS/1.0.0")  # type: ignore[arg-type]
    with pytest.raises(ProviderError) as caught:
        client.status(TICKET)
    assert caught.value.details["http_status"] == 400

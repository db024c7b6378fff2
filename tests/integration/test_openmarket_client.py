"""The OpenMarket client against the sandbox over real HTTP on 127.0.0.1: progression, credentials, not found,
every injected fault, retries; and the sandbox's own protocol checks (content type, XML, attributes)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import urllib3

from local.sandboxes.base import Fault
from local.sandboxes.openmarket import DEFAULT_CREDENTIALS, OpenMarketSandbox
from sms_status.errors import ProviderAuthError, ProviderError, ProviderTimeout, ProviderUnavailable
from sms_status.http import HttpClient, HttpSettings
from sms_status.model import Status
from sms_status.providers.openmarket import OpenMarketClient, OpenMarketCredentials, parse_response

TICKET = "12004-0328K-1232U-18C21"
USER_AGENT = "SmsStatusTest/SMS/1.0.0"
FIVE_DAYS = 5 * 24 * 3600
# Quick failures: a 0.5 s read timeout, two retries with almost no backoff.
FAST = HttpSettings(connect_timeout=1.0, read_timeout=0.5, retries=2, backoff_factor=0.01, backoff_max=0.05)
FIXTURES = Path(__file__).parent.parent / "fixtures" / "openmarket"


def make_client(sandbox: OpenMarketSandbox, credentials: dict[str, str] | None = None, settings: HttpSettings = FAST) -> OpenMarketClient:
    secret = credentials or DEFAULT_CREDENTIALS
    return OpenMarketClient(
        HttpClient("openmarket", settings), sandbox.base_url, OpenMarketCredentials.from_secret(secret, "test/openmarket"), USER_AGENT
    )


def post(
    sandbox: OpenMarketSandbox, body: bytes, content_type: str = "text/xml", path: str = "/wmp", method: str = "POST"
) -> urllib3.BaseHTTPResponse:
    return urllib3.request(method, sandbox.base_url + path, body=body, headers={"Content-Type": content_type}, retries=False, timeout=5)


# ---- the happy paths ---------------------------------------------------------------------------------------
def test_ticket_progresses_from_pending_to_sent_to_delivered(openmarket_sandbox: OpenMarketSandbox) -> None:
    openmarket_sandbox.add_message(TICKET, steps=[(0, 2), (5, 3), (10, 4)])
    client = make_client(openmarket_sandbox)

    seen = [client.status(TICKET)]
    openmarket_sandbox.clock.advance(5)
    seen.append(client.status(TICKET))
    openmarket_sandbox.clock.advance(5)
    seen.append(client.status(TICKET))

    assert [(r.status, r.final, r.provider_status.code) for r in seen] == [
        (Status.PENDING, False, "2"),
        (Status.SENT, False, "3"),
        (Status.DELIVERED, True, "4"),
    ]
    assert seen[-1].provider_status.description == "Message successfully delivered."
    assert all(r.id == TICKET for r in seen)


def test_request_is_text_xml_post_to_wmp_with_the_user_agent(openmarket_sandbox: OpenMarketSandbox) -> None:
    openmarket_sandbox.add_message(TICKET, steps=[(0, 0)])
    make_client(openmarket_sandbox).status(TICKET)

    [request] = openmarket_sandbox.requests
    assert (request.method, request.path, request.headers["content-type"]) == ("POST", "/wmp", "text/xml")
    assert openmarket_sandbox.user_agents == [USER_AGENT]
    assert openmarket_sandbox.queries[0].ticket_id == TICKET


def test_carrier_failure_is_final_undelivered(openmarket_sandbox: OpenMarketSandbox) -> None:
    openmarket_sandbox.add_message("T-509", steps=[(0, 3), (1, 509)])
    openmarket_sandbox.clock.advance(1)
    report = make_client(openmarket_sandbox).status("T-509")
    assert (report.status, report.final, report.provider_status.code) == (Status.UNDELIVERED, True, "509")


def test_password_with_xml_special_characters_reaches_the_sandbox_intact(openmarket_sandbox: OpenMarketSandbox) -> None:
    assert set("&<>\"'") <= set(DEFAULT_CREDENTIALS["password"])
    openmarket_sandbox.add_message(TICKET, steps=[(0, 4)])
    assert make_client(openmarket_sandbox).status(TICKET).status is Status.DELIVERED

    # Text that already looks escaped must not be decoded twice on the way.
    rotated = {"account_id": "acc&<id>", "password": "&lt;literal&amp;\"'<>\t"}
    openmarket_sandbox.credentials = dict(rotated)
    assert make_client(openmarket_sandbox, rotated).status(TICKET).status is Status.DELIVERED
    assert openmarket_sandbox.queries[-1].account_id == "acc&<id>"


def test_wrong_password_is_a_provider_auth_error(openmarket_sandbox: OpenMarketSandbox) -> None:
    openmarket_sandbox.add_message(TICKET, steps=[(0, 4)])
    client = make_client(openmarket_sandbox, {"account_id": DEFAULT_CREDENTIALS["account_id"], "password": "wrong"})
    with pytest.raises(ProviderAuthError) as caught:
        client.status(TICKET)
    assert caught.value.details["provider_code"] == "420"


def test_rotated_credentials_refuse_the_old_secret_and_accept_the_new(openmarket_sandbox: OpenMarketSandbox) -> None:
    openmarket_sandbox.add_message(TICKET, steps=[(0, 4)])
    old = make_client(openmarket_sandbox)
    new_secret = {"account_id": DEFAULT_CREDENTIALS["account_id"], "password": "n3w&<pass>"}
    openmarket_sandbox.credentials = dict(new_secret)

    with pytest.raises(ProviderAuthError):
        old.status(TICKET)
    assert make_client(openmarket_sandbox, new_secret).status(TICKET).status is Status.DELIVERED


def test_unknown_ticket_is_a_not_found_report(openmarket_sandbox: OpenMarketSandbox) -> None:
    report = make_client(openmarket_sandbox).status("NO-SUCH-TICKET")
    assert (report.status, report.final, report.id, report.provider_status.code) == (Status.NOT_FOUND, True, "NO-SUCH-TICKET", "711")


def test_ticket_older_than_five_days_is_not_found(openmarket_sandbox: OpenMarketSandbox) -> None:
    openmarket_sandbox.add_message(TICKET, steps=[(0, 0)])
    client = make_client(openmarket_sandbox)
    openmarket_sandbox.clock.advance(FIVE_DAYS - 1)
    assert client.status(TICKET).status is Status.SENT
    openmarket_sandbox.clock.advance(2)
    assert client.status(TICKET).status is Status.NOT_FOUND


def test_nothing_secret_is_logged(openmarket_sandbox: OpenMarketSandbox, caplog: pytest.LogCaptureFixture) -> None:
    openmarket_sandbox.add_message(TICKET, steps=[(0, 4)])
    with caplog.at_level(logging.DEBUG):
        make_client(openmarket_sandbox).status(TICKET)
        with pytest.raises(ProviderAuthError):
            make_client(openmarket_sandbox, {"account_id": "x", "password": "Wr0ng-Secret"}).status(TICKET)
    assert DEFAULT_CREDENTIALS["password"] not in caplog.text
    assert "Wr0ng-Secret" not in caplog.text


# ---- faults ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "error", "attempts"),
    [
        (Fault.TIMEOUT, ProviderTimeout, 1),  # a read timeout is never retried
        (Fault.SERVER_ERROR, ProviderUnavailable, 3),
        (Fault.UNAVAILABLE, ProviderUnavailable, 3),
        (Fault.RATE_LIMIT, ProviderUnavailable, 3),
        (Fault.RESET, ProviderUnavailable, 3),
        (Fault.MALFORMED, ProviderError, 1),
        (Fault.HTML, ProviderError, 1),
        (Fault.ENTITY_BOMB, ProviderError, 1),
        (Fault.EXTERNAL_ENTITY, ProviderError, 1),
    ],
)
def test_every_fault_ends_in_its_typed_error(
    openmarket_sandbox: OpenMarketSandbox, fault: Fault, error: type[Exception], attempts: int
) -> None:
    openmarket_sandbox.add_message(TICKET, steps=[(0, 4)])
    openmarket_sandbox.inject(fault, times=None)
    with pytest.raises(error) as caught:
        make_client(openmarket_sandbox).status(TICKET)
    assert type(caught.value) is error  # e.g. not a ProviderError subclass standing in for another
    assert len(openmarket_sandbox.requests) == attempts


def test_one_transient_server_error_is_retried_and_succeeds(openmarket_sandbox: OpenMarketSandbox) -> None:
    openmarket_sandbox.add_message(TICKET, steps=[(0, 4)])
    openmarket_sandbox.inject(Fault.SERVER_ERROR, times=1)
    report = make_client(openmarket_sandbox).status(TICKET)
    assert report.status is Status.DELIVERED
    assert len(openmarket_sandbox.requests) == 2


# ---- the sandbox behaves like the seed document ------------------------------------------------------------
def error_code(response: urllib3.BaseHTTPResponse) -> str | None:
    """The `error@code` of a sandbox answer, read by the client's own parser."""
    try:
        report = parse_response("x", response.data, response.status)
    except ProviderError as exc:
        return exc.provider_code
    except ProviderAuthError as exc:
        return exc.details["provider_code"]
    return report.provider_status.code if report.status is Status.NOT_FOUND else None


def query(version: str = 'version="3.0"', protocol: str = 'protocol="wmp"', type_: str = 'type="query"', root: str = "request") -> bytes:
    return (
        f'<?xml version="1.0"?><{root} {version} {protocol} {type_}><user agent="A/SMS/1.0.0"/>'
        f'<account id="000-111-222-33333" password="p&amp;ss&lt;w&gt;rd&quot;&apos;"/><ticket id="{TICKET}"/></{root}>'
    ).encode()


def test_the_seed_request_example_is_accepted_with_the_seed_credentials(openmarket_sandbox: OpenMarketSandbox) -> None:
    openmarket_sandbox.credentials = {"account_id": "123-456-789-12345", "password": "password here"}
    openmarket_sandbox.add_message(TICKET, steps=[(0, 0)])
    response = post(openmarket_sandbox, (FIXTURES / "seed_request.xml").read_bytes())
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/xml"
    assert response.data == (
        b'<?xml version="1.0" ?>\n<response version="3.0" protocol="wmp" type="query">\n'
        b'<error code="0" description="No Error" resolution="" />\n'
        b'<status code="0" description="Message successfully sent to carrier." resolution="" />\n</response>\n'
    )
    assert openmarket_sandbox.user_agents == ["XML/SMS/1.0.0"]


@pytest.mark.parametrize(
    ("body", "content_type", "http_status", "code"),
    [
        (query(), "application/x-www-form-urlencoded", 400, "307"),  # livesafe: the usual cause of 307
        (query(), "application/json", 400, "307"),
        (b"<request version='3.0'", "text/xml", 400, "307"),  # ill-formed
        (b"", "text/xml", 400, "306"),
        (query(root="query"), "text/xml", 400, "301"),
        (query(version=""), "text/xml", 400, "303"),
        (query(protocol=""), "text/xml", 400, "304"),
        (query(version='version="2.0"'), "text/xml", 400, "321"),
        (query(protocol='protocol="paging"'), "text/xml", 400, "322"),
        (query(type_='type="submit"'), "text/xml", 400, "323"),
        (query(type_=""), "text/xml", 400, "323"),
        (query().replace(b"p&amp;ss", b"p%26ss"), "text/xml", 403, "420"),
        (query(), "text/xml; charset=utf-8", 404, "711"),  # well-formed and authorized: the ticket is unknown
    ],
)
def test_sandbox_rejects_bad_requests_like_openmarket(
    openmarket_sandbox: OpenMarketSandbox, body: bytes, content_type: str, http_status: int, code: str
) -> None:
    response = post(openmarket_sandbox, body, content_type)
    assert (response.status, error_code(response)) == (http_status, code)


@pytest.mark.parametrize(("method", "path", "http_status"), [("GET", "/wmp", 405), ("POST", "/wmp/", 404), ("POST", "/v4/sms", 404)])
def test_sandbox_serves_only_post_wmp(openmarket_sandbox: OpenMarketSandbox, method: str, path: str, http_status: int) -> None:
    response = post(openmarket_sandbox, query(), path=path, method=method)
    assert response.status == http_status
    assert error_code(response) == "1000"


def test_sandbox_refuses_a_dtd_in_the_request(openmarket_sandbox: OpenMarketSandbox) -> None:
    body = b'<?xml version="1.0"?><!DOCTYPE request [<!ENTITY a "b">]>' + query().split(b"?>", 1)[1]
    response = post(openmarket_sandbox, body)
    assert (response.status, error_code(response)) == (400, "307")


def test_sandbox_is_seeded_over_http_and_by_the_demo_helper(openmarket_sandbox: OpenMarketSandbox) -> None:
    control = urllib3.request(
        "POST", openmarket_sandbox.base_url + "/_sandbox/messages", json={"id": "T-HTTP", "steps": [[0, 2], [3, 811]]}
    )
    assert control.status == 200
    ids = openmarket_sandbox.seed_demo()
    openmarket_sandbox.clock.advance(15)
    client = make_client(openmarket_sandbox)

    assert (client.status("T-HTTP").status, client.status("T-HTTP").retryable) == (Status.EXPIRED, True)
    assert [client.status(ticket).status for ticket in ids] == [Status.DELIVERED, Status.UNDELIVERED, Status.SENT]

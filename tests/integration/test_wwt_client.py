"""WwtClient against the WWT sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from local.sandboxes.base import Fault
from local.sandboxes.wwt import DEFAULT_CREDENTIALS, WwtSandbox
from sms_status.errors import InvalidRequest, ProviderAuthError, ProviderError, ProviderTimeout, ProviderUnavailable
from sms_status.http import HttpClient, HttpSettings
from sms_status.model import Status
from sms_status.providers.wwt import WwtClient, WwtCredentials

FAST = HttpSettings(read_timeout=0.5, backoff_factor=0.01)
STEPS = [(0, "accepted"), (5, "sent"), (10, "delivered")]


def client_for(sandbox: WwtSandbox, api_key: str = DEFAULT_CREDENTIALS["api_key"], auth_header: str = "X-API-KEY") -> WwtClient:
    return WwtClient(HttpClient("wwt", FAST), sandbox.base_url, WwtCredentials(api_key), auth_header)


@pytest.fixture
def seeded(wwt_sandbox: WwtSandbox) -> WwtSandbox:
    wwt_sandbox.add_message("211", STEPS, reference="ext19", msisdn="380972000001", price=0.23, currency="EUR")
    return wwt_sandbox


def test_by_id_reads_the_seeded_message(seeded: WwtSandbox):
    report = client_for(seeded).by_id("211")

    assert (report.id, report.status, report.final) == ("211", Status.PENDING, False)
    assert report.provider_status.code == "accepted"
    assert report.recipient == "380972000001"
    assert (str(report.price), report.currency) == ("0.23", "EUR")
    assert report.details == {"wwt_id": "211", "reference": "ext19"}
    # WWT times have whole seconds and no zone; the sandbox sends UTC.
    assert report.submitted_at == datetime.fromtimestamp(int(seeded.messages["211"].created_at), UTC)
    assert (report.sent_at, report.delivered_at) == (None, None)


def test_request_carries_the_key_header_and_accept(seeded: WwtSandbox):
    client_for(seeded).by_id("211")

    [request] = seeded.requests
    assert (request.method, request.path) == ("GET", "/rest/sms/211")
    assert request.headers["x-api-key"] == DEFAULT_CREDENTIALS["api_key"]
    assert request.headers["accept"] == "application/json"


def test_by_reference_finds_the_message_and_reports_the_reference_as_id(seeded: WwtSandbox):
    report = client_for(seeded).by_reference("ext19")

    assert (report.id, report.status) == ("ext19", Status.PENDING)
    assert report.details["wwt_id"] == "211"
    assert seeded.requests[0].path == "/rest/sms/reference/ext19"


def test_status_progresses_with_the_clock(seeded: WwtSandbox):
    client = client_for(seeded)
    first = client.by_id("211")

    seeded.clock.advance(5)
    second = client.by_id("211")
    assert (second.status, second.final) == (Status.SENT, False)
    assert second.sent_at is not None
    assert second.delivered_at is None
    assert second.submitted_at == first.submitted_at

    seeded.clock.advance(5)
    third = client.by_reference("ext19")
    assert (third.status, third.final) == (Status.DELIVERED, True)
    assert third.sent_at == second.sent_at
    assert (third.delivered_at - third.sent_at).total_seconds() == pytest.approx(5, abs=1)


def test_failure_receipt_time_is_kept_in_details(wwt_sandbox: WwtSandbox):
    wwt_sandbox.add_message("300", [(0, "sent"), (20, "undeliverable")], reference="r300")
    wwt_sandbox.clock.advance(20)

    report = client_for(wwt_sandbox).by_id("300")

    assert (report.status, report.final, report.delivered_at) == (Status.UNDELIVERED, True, None)
    assert report.details["time_dr"]


@pytest.mark.parametrize("error_http_status", [200, 404])
@pytest.mark.parametrize("string_error_codes", [False, True])
def test_not_found_by_id_and_reference(seeded: WwtSandbox, error_http_status: int, string_error_codes: bool):
    seeded.error_http_status = error_http_status
    seeded.string_error_codes = string_error_codes
    client = client_for(seeded)

    by_id = client.by_id("999")
    by_reference = client.by_reference("nosuch")

    for report, key in ((by_id, "999"), (by_reference, "nosuch")):
        assert (report.id, report.status, report.final) == (key, Status.NOT_FOUND, True)
        assert (report.provider_status.code, report.provider_status.description) == ("20", "SMS not found")


def test_string_codes_also_read_on_success(seeded: WwtSandbox):
    seeded.string_error_codes = True
    assert client_for(seeded).by_id("211").status is Status.PENDING


def test_wrong_key_is_an_auth_error(seeded: WwtSandbox):
    with pytest.raises(ProviderAuthError) as caught:
        client_for(seeded, api_key="live_wrong").by_id("211")

    assert caught.value.details["provider_code"] == "1"
    assert "live_wrong" not in str(caught.value.to_body())


def test_custom_auth_header_name(seeded: WwtSandbox):
    seeded.auth_header = "X-Api-Token"

    with pytest.raises(ProviderAuthError):
        client_for(seeded).by_id("211")  # the default header name is now wrong
    report = client_for(seeded, auth_header="X-Api-Token").by_id("211")

    assert report.status is Status.PENDING
    assert seeded.requests[-1].headers["x-api-token"] == DEFAULT_CREDENTIALS["api_key"]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.TIMEOUT, ProviderTimeout),
        (Fault.SERVER_ERROR, ProviderUnavailable),
        (Fault.UNAVAILABLE, ProviderUnavailable),
        (Fault.RATE_LIMIT, ProviderUnavailable),
        (Fault.RESET, ProviderUnavailable),
        (Fault.MALFORMED, ProviderError),
        (Fault.HTML, ProviderError),
    ],
)
def test_every_fault_becomes_a_typed_error_quickly(seeded: WwtSandbox, fault: Fault, error: type[Exception]):
    seeded.inject(fault, times=None)
    started = time.monotonic()

    with pytest.raises(error) as caught:
        client_for(seeded).by_id("211")

    assert type(caught.value) is error  # not a subclass standing in for another kind of failure
    assert time.monotonic() - started < 5  # bounded by the 0.5 s read timeout and short backoff, not `hang`
    assert 1 <= len(seeded.requests) <= 1 + FAST.retries


def test_one_transient_fault_is_retried_transparently(seeded: WwtSandbox):
    seeded.inject(Fault.UNAVAILABLE, times=1)

    assert client_for(seeded).by_id("211").status is Status.PENDING
    assert len(seeded.requests) == 2


@pytest.mark.parametrize("bad_id", ["12a", "", "-1", " 1", "1.0", "1/2", "9" * 21])
def test_bad_id_is_rejected_before_any_request(wwt_sandbox: WwtSandbox, bad_id: str):
    with pytest.raises(InvalidRequest):
        client_for(wwt_sandbox).by_id(bad_id)
    assert len(wwt_sandbox.requests) == 0


@pytest.mark.parametrize("bad_reference", ["", "A" * 33, "ab-c", "äb", "../211"])
def test_bad_reference_is_rejected_before_any_request(wwt_sandbox: WwtSandbox, bad_reference: str):
    with pytest.raises(InvalidRequest):
        client_for(wwt_sandbox).by_reference(bad_reference)
    assert len(wwt_sandbox.requests) == 0


# ---- the sandbox's own answers to requests the client would never send -------------------------------
@pytest.mark.parametrize(
    ("path", "code"),
    [("/rest/sms/12a", 24), ("/rest/sms/", 24), ("/rest/sms/reference/ab-c", 27), ("/rest/sms/reference/", 22)],
)
def test_sandbox_answers_documented_codes_for_bad_keys(wwt_sandbox: WwtSandbox, path: str, code: int):
    http = HttpClient("wwt", FAST)
    response = http.send("GET", wwt_sandbox.base_url + path, headers={"X-API-KEY": DEFAULT_CREDENTIALS["api_key"]})

    assert response.status == 200
    assert response.json()["error"] == code


def test_sandbox_seed_from_json_and_demo(wwt_sandbox: WwtSandbox):
    wwt_sandbox.seed_from_json({"id": "777", "steps": [[0, "sent"], [1, "delivered"]], "reference": "seed777", "price": "1.1000000"})
    ids = wwt_sandbox.seed_demo()
    wwt_sandbox.clock.advance(60)
    client = client_for(wwt_sandbox)

    seeded_report = client.by_reference("seed777")
    assert (seeded_report.status, str(seeded_report.price)) == (Status.DELIVERED, "1.1000000")
    statuses = {client.by_id(message_id).status for message_id in ids}
    assert {Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED, Status.UNKNOWN, Status.REJECTED, Status.PENDING} <= statuses


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"id": "12a", "steps": [[0, "sent"]]}, "id"),
        ({"id": "1", "steps": []}, "steps"),
        ({"id": "1", "steps": [[0, "sent"]], "reference": "a-b"}, "reference"),
    ],
)
def test_sandbox_refuses_bad_seeds(wwt_sandbox: WwtSandbox, payload: dict, problem: str):
    with pytest.raises(ValueError, match=problem):
        wwt_sandbox.seed_from_json(payload)
    assert wwt_sandbox.messages == {}

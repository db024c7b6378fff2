"""WooxyClient against the Wooxy sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import time

import pytest
import urllib3

from local.sandboxes.base import Fault
from local.sandboxes.wooxy import DEFAULT_CREDENTIALS, DELIVERING, WooxySandbox
from sms_status.errors import InvalidRequest, ProviderAuthError, ProviderError, ProviderTimeout, ProviderUnavailable
from sms_status.http import HttpClient, HttpSettings
from sms_status.model import Status
from sms_status.providers.wooxy import WooxyClient, WooxyCredentials
from sms_status.services import WooxyService

FAST = HttpSettings(connect_timeout=0.5, read_timeout=0.5, backoff_factor=0.01)
TEXT = "Hi, user! Your code is 834201"


def make_client(sandbox: WooxySandbox, token: str = DEFAULT_CREDENTIALS["access_token"]) -> WooxyClient:
    return WooxyClient(HttpClient("wooxy", FAST), sandbox.base_url, WooxyCredentials(token))


def ids_for(count: int) -> list[str]:
    return [f"{n:024x}" for n in range(1, count + 1)]


def seed(sandbox: WooxySandbox, ids: list[str], steps=DELIVERING) -> None:
    for message_id in ids:
        sandbox.add_message(message_id, steps, phone_number="+15555555", from_name="Sender", text=TEXT)


def raw_post(sandbox: WooxySandbox, body: bytes, token: str | None = DEFAULT_CREDENTIALS["access_token"]) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Access-Token"] = token
    response = urllib3.request("POST", sandbox.base_url + "/v3/sms/info", body=body, headers=headers, retries=False, timeout=2)
    return response.status, json.loads(response.data)


# ---- batching ------------------------------------------------------------------------------------
class CachedSecret:
    read_budget = 0.0

    def get(self, refresh: bool = False) -> WooxyCredentials:
        return WooxyCredentials(DEFAULT_CREDENTIALS["access_token"])


@pytest.mark.parametrize(("count", "requests"), [(1, 1), (100, 1), (101, 2), (250, 3)])
def test_every_id_answered_once_in_order_never_more_than_100_per_request(wooxy_sandbox: WooxySandbox, count: int, requests: int):
    ids = ids_for(count)
    seed(wooxy_sandbox, ids)
    asked = ids + ids[::7]  # duplicates are collapsed, first occurrence order kept
    service = WooxyService(CachedSecret(), lambda credentials: make_client(wooxy_sandbox))  # type: ignore[arg-type]

    reports = service.lookup(asked)

    assert [r.id for r in reports] == ids
    assert all(r.status is Status.PENDING for r in reports)
    assert len(wooxy_sandbox.requests) == requests
    assert wooxy_sandbox.max_ids_per_request == min(count, 100)
    assert wooxy_sandbox.max_in_flight == 1  # chunks go one after another
    sent = [json.loads(r.body)["ids"] for r in wooxy_sandbox.requests]
    assert [i for chunk in sent for i in chunk] == ids


def test_request_carries_the_documented_headers_and_body(wooxy_sandbox: WooxySandbox):
    seed(wooxy_sandbox, ["abc"])

    make_client(wooxy_sandbox).status("abc")

    (request,) = wooxy_sandbox.requests
    assert (request.method, request.path) == ("POST", "/v3/sms/info")
    assert request.headers["access-token"] == DEFAULT_CREDENTIALS["access_token"]
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {"ids": ["abc"]}


def test_no_ids_sends_nothing(wooxy_sandbox: WooxySandbox):
    assert make_client(wooxy_sandbox).statuses([]) == []
    assert wooxy_sandbox.requests == []


@pytest.mark.parametrize("ids", [["ok", ""], ["ok", None], "abc"])
def test_invalid_ids_are_refused_before_any_request(wooxy_sandbox: WooxySandbox, ids: object):
    with pytest.raises(InvalidRequest):
        make_client(wooxy_sandbox).statuses(ids)  # type: ignore[arg-type]
    assert wooxy_sandbox.requests == []


# ---- what the answers say ------------------------------------------------------------------------
def test_status_progresses_new_queued_sent_delivered(wooxy_sandbox: WooxySandbox):
    wooxy_sandbox.add_message("5d91537bd132fdf45916520a", DELIVERING, phone_number="+15555555", text=TEXT)
    client = make_client(wooxy_sandbox)

    seen = []
    for step in (0, 2, 3, 5):  # reach 0 s, 2 s, 5 s and 10 s after creation
        wooxy_sandbox.clock.advance(step)
        report = client.status("5d91537bd132fdf45916520a")
        seen.append((report.provider_status.code, report.status, report.final))

    assert seen == [
        ("new", Status.PENDING, False),
        ("queued", Status.PENDING, False),
        ("sent", Status.SENT, False),
        ("delivered", Status.DELIVERED, True),
    ]
    assert report.recipient == "+15555555"
    created = wooxy_sandbox.messages["5d91537bd132fdf45916520a"].created_at
    assert abs(report.submitted_at.timestamp() - created) < 1  # createdAt has whole seconds
    assert TEXT not in json.dumps(report.to_dict())


@pytest.mark.parametrize(("final_state", "status"), [("failed", Status.FAILED), ("undelivered", Status.UNDELIVERED)])
def test_failures_are_final(wooxy_sandbox: WooxySandbox, final_state: str, status: Status):
    wooxy_sandbox.add_message("m1", [(0, "sent"), (1, final_state)])
    wooxy_sandbox.clock.advance(1)

    report = make_client(wooxy_sandbox).status("m1")

    assert (report.status, report.final) == (status, True)


def test_unknown_ids_are_not_found_and_known_ones_still_answered(wooxy_sandbox: WooxySandbox):
    seed(wooxy_sandbox, ["known"])

    unknown, known = make_client(wooxy_sandbox).statuses(["nope", "known"])

    assert (unknown.status, unknown.final) == (Status.NOT_FOUND, True)
    assert unknown.provider_status.description == "SMS nope not found"
    assert known.status is Status.PENDING


def test_mangled_keys_are_still_matched(wooxy_sandbox: WooxySandbox):
    wooxy_sandbox.mangle_keys = True
    seed(wooxy_sandbox, ["5bc0a73d19b6051f963023c1"])

    found, missing = make_client(wooxy_sandbox).statuses(["5bc0a73d19b6051f963023c1", "5bc0a73d19b6051f963023c2"])

    assert found.status is Status.PENDING
    assert missing.status is Status.NOT_FOUND


def test_silent_ids_are_answered_as_unknown(wooxy_sandbox: WooxySandbox):
    seed(wooxy_sandbox, ["a", "b"])
    wooxy_sandbox.silent_ids = {"a", "ghost"}

    reports = make_client(wooxy_sandbox).statuses(["a", "b", "ghost"])

    assert [(r.id, r.status, r.final) for r in reports] == [
        ("a", Status.UNKNOWN, False),
        ("b", Status.PENDING, False),
        ("ghost", Status.UNKNOWN, False),
    ]


def test_undocumented_status_is_unknown_with_raw_value(wooxy_sandbox: WooxySandbox):
    wooxy_sandbox.add_message("m1", [(0, "paused")])

    report = make_client(wooxy_sandbox).status("m1")

    assert (report.status, report.final, report.provider_status.code) == (Status.UNKNOWN, False, "paused")


# ---- errors --------------------------------------------------------------------------------------
def test_wrong_token_is_an_auth_error(wooxy_sandbox: WooxySandbox):
    with pytest.raises(ProviderAuthError) as caught:
        make_client(wooxy_sandbox, token="not-the-token").status("abc")

    assert caught.value.details["provider_code"] == "invalid_token"
    assert "not-the-token" not in json.dumps(caught.value.to_body())


def test_rotated_token_is_an_auth_error(wooxy_sandbox: WooxySandbox):
    client = make_client(wooxy_sandbox)
    wooxy_sandbox.access_token = "rotated"

    with pytest.raises(ProviderAuthError):
        client.status("abc")


FAULTS = [
    (Fault.TIMEOUT, ProviderTimeout),
    (Fault.SERVER_ERROR, ProviderUnavailable),
    (Fault.UNAVAILABLE, ProviderUnavailable),
    (Fault.RATE_LIMIT, ProviderUnavailable),
    (Fault.RESET, ProviderUnavailable),
    (Fault.MALFORMED, ProviderError),
    (Fault.HTML, ProviderError),
]


@pytest.mark.parametrize(("fault", "error"), FAULTS)
def test_persistent_fault_is_a_typed_error_quickly(wooxy_sandbox: WooxySandbox, fault: Fault, error: type[Exception]):
    seed(wooxy_sandbox, ["abc"])
    wooxy_sandbox.inject(fault, times=None)

    started = time.monotonic()
    with pytest.raises(error) as caught:
        make_client(wooxy_sandbox).status("abc")
    elapsed = time.monotonic() - started

    assert type(caught.value) is error
    assert elapsed < 3  # bounded: 0.5 s read timeout, 2 retries with 10 ms backoff, never the 10 s hang


def test_one_transient_500_is_retried_and_succeeds(wooxy_sandbox: WooxySandbox):
    seed(wooxy_sandbox, ["abc"])
    wooxy_sandbox.inject(Fault.SERVER_ERROR, times=1)

    report = make_client(wooxy_sandbox).status("abc")

    assert report.status is Status.PENDING
    assert len(wooxy_sandbox.requests) == 2


def test_more_ids_than_one_request_takes_are_refused_before_any_request(wooxy_sandbox: WooxySandbox):
    with pytest.raises(InvalidRequest, match="at most 100 ids"):
        make_client(wooxy_sandbox).statuses(ids_for(101))
    assert wooxy_sandbox.requests == []


# ---- the sandbox speaks the documented strings -----------------------------------------------------
@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "Bad Request"),
        (b'"ids"', "Bad Request"),
        (b"{}", "Argument ids required"),
        (b'{"ids": "abc"}', "Argument ids must be an array of strings"),
        (b'{"ids": ["a", 1]}', "Argument ids must be an array of strings"),
        (b'{"ids": []}', "Argument ids can not be empty"),
        (b'{"ids": ["a", ""]}', "each id must be a non-empty string"),
        (json.dumps({"ids": ids_for(101)}).encode(), "ids count must be less or equal 100"),
    ],
)
def test_sandbox_validation_strings(wooxy_sandbox: WooxySandbox, body: bytes, error: str):
    status, payload = raw_post(wooxy_sandbox, body)

    assert (status, payload) == (400, {"result": False, "errors": [error]})


def test_sandbox_records_oversized_requests(wooxy_sandbox: WooxySandbox):
    raw_post(wooxy_sandbox, json.dumps({"ids": ids_for(101)}).encode())

    assert wooxy_sandbox.max_ids_per_request == 101


@pytest.mark.parametrize("token", [None, "", "wrong"])
def test_sandbox_requires_the_token(wooxy_sandbox: WooxySandbox, token: str | None):
    status, payload = raw_post(wooxy_sandbox, b'{"ids": ["a"]}', token=token)

    assert (status, payload) == (401, {"result": False, "errors": ["Invalid authorization token!"]})


def test_sandbox_answers_like_the_seed_example(wooxy_sandbox: WooxySandbox):
    wooxy_sandbox.add_message("a1", [(0, "delivered")], phone_number="+15555555", from_name="Sender name", text=TEXT)
    wooxy_sandbox.mangle_keys = True

    status, payload = raw_post(wooxy_sandbox, b'{"ids": ["a1", "b2"]}')

    assert status == 200
    assert payload["result"] is True
    assert payload["errors"] == ["SMS b2 not found"]
    assert payload["data"]["b 2"] is None
    entry = payload["data"]["a 1"]
    assert {k: v for k, v in entry.items() if k != "createdAt"} == {
        "id": "a1",
        "status": "delivered",
        "text": TEXT,
        "phoneNumber": "+15555555",
        "fromName": "Sender name",
    }
    assert time.strptime(entry["createdAt"], "%Y-%m-%d %H:%M:%S")


def test_sandbox_http_seed_control(wooxy_sandbox: WooxySandbox):
    body = json.dumps({"id": "h1", "steps": [[0, "queued"], [4, "sent"]], "phone_number": "+15550001"}).encode()
    control = urllib3.request("POST", wooxy_sandbox.base_url + "/_sandbox/messages", body=body, retries=False, timeout=2)
    bad = urllib3.request(
        "POST", wooxy_sandbox.base_url + "/_sandbox/messages", body=b'{"id": "h2", "steps": []}', retries=False, timeout=2
    )
    wooxy_sandbox.clock.advance(4)

    report = make_client(wooxy_sandbox).status("h1")

    assert (control.status, bad.status) == (200, 400)
    assert (report.status, report.recipient) == (Status.SENT, "+15550001")


def test_seed_demo_covers_the_interesting_paths(wooxy_sandbox: WooxySandbox):
    ids = wooxy_sandbox.seed_demo()
    wooxy_sandbox.clock.advance(60)

    reports = make_client(wooxy_sandbox).statuses(ids)

    assert [r.status for r in reports] == [Status.DELIVERED, Status.FAILED, Status.UNDELIVERED, Status.PENDING]

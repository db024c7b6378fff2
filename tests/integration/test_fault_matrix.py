"""Every provider fault x every provider, through the real route handlers: each ends in its pinned error within
the lookup deadline, with nothing secret, no phone number and no message text in the logs.

The deadline (BATCH_DEADLINE) is kept small and the read timeout large, so it is the deadline that must end the
slow cases, as in production where it keeps every call under the function's timeout. The sandboxes and a
listener whose backlog is full (a connect that never completes) are all on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import pytest

from local.sandboxes import openmarket, wooxy, wwt
from local.sandboxes.base import Fault
from sms_status.credentials import SecretSource
from sms_status.model import Provider
from tests.apigw import call, load_handler, rest_event

DEADLINE = 2.0  # BATCH_DEADLINE for these tests, seconds (it includes a cold read of the secret)
SLACK = 0.6  # a loaded 2-core machine: thread wake-ups, the handler around the lookup
PHONE = "+15555550123"
TEXT = "Your one-time code is 834201"
SECRETS = {
    Provider.OPENMARKET: openmarket.DEFAULT_CREDENTIALS,
    Provider.WOOXY: wooxy.DEFAULT_CREDENTIALS,
    Provider.WWT: wwt.DEFAULT_CREDENTIALS,
}
WRONG_SECRETS = {
    Provider.OPENMARKET: {"account_id": "999-000-000-00000", "password": "wrong-pass-7d1c"},
    Provider.WOOXY: {"access_token": "wrong-token-7d1c"},
    Provider.WWT: {"api_key": "wrong-key-7d1c"},
}
ROUTE = {
    Provider.OPENMARKET: ("/openmarket/messages/{ticketId}", "ticketId", "0112C-0402H-14019-14Y7K"),
    Provider.WOOXY: ("/wooxy/messages/{id}", "id", "5d91537bd132fdf45916520a"),
    Provider.WWT: ("/wwt/messages/{id}", "id", "211"),
}
TIMEOUT = (504, "provider_timeout")
UNAVAILABLE = (503, "provider_unavailable")
BAD_BODY = (502, "provider_error")
REFUSED = (503, "credentials_error")
# fault -> the pinned answer. Strings are faults that are not a sandbox reply (see `arrange`).
MATRIX = {
    "connect_timeout": TIMEOUT,
    "dns_timeout": TIMEOUT,
    Fault.TIMEOUT: TIMEOUT,  # headers never come (a read timeout, cut by the deadline)
    Fault.SLOW_HEADERS: TIMEOUT,
    Fault.TRICKLE: TIMEOUT,  # a body dripping past the deadline
    Fault.HUGE_ERROR: UNAVAILABLE,  # a 5xx with an endless body: never drained
    Fault.RESET: UNAVAILABLE,
    Fault.HTML: BAD_BODY,
    Fault.MALFORMED: BAD_BODY,  # truncated XML / JSON
    Fault.ENTITY_BOMB: BAD_BODY,
    Fault.DEEP_NESTING: BAD_BODY,
    Fault.NOT_UTF8: BAD_BODY,
    "auth_refused": REFUSED,
}


@pytest.fixture
def sandboxes(openmarket_sandbox, wooxy_sandbox, wwt_sandbox):
    for sandbox in (openmarket_sandbox, wooxy_sandbox, wwt_sandbox):
        sandbox.hang = 30  # a hung answer outlives any deadline here (the sandbox stops it at teardown)
    openmarket_sandbox.add_message(ROUTE[Provider.OPENMARKET][2], [(0, 4)])
    wooxy_sandbox.add_message(ROUTE[Provider.WOOXY][2], wooxy.DELIVERING, phone_number=PHONE, from_name="Sender", text=TEXT)
    wwt_sandbox.add_message(ROUTE[Provider.WWT][2], [(0, "delivered")], msisdn=PHONE)
    return {Provider.OPENMARKET: openmarket_sandbox, Provider.WOOXY: wooxy_sandbox, Provider.WWT: wwt_sandbox}


@pytest.fixture
def short_deadline(provider_secrets, monkeypatch):
    monkeypatch.setenv("BATCH_DEADLINE", str(DEADLINE))
    monkeypatch.setenv("PROVIDER_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("PROVIDER_READ_TIMEOUT", "5")  # longer than the deadline: the deadline must cut
    monkeypatch.setenv("PROVIDER_RETRIES", "2")
    return provider_secrets


@pytest.fixture
def hung_dns(monkeypatch):
    """getaddrinfo for "localhost" at the ports added to the set it yields hangs (until teardown): the provider's
    name, not the secrets extension's, which is on localhost too (and resolved from /etc/hosts in Lambda)."""
    release = threading.Event()
    real = socket.getaddrinfo
    hung_ports: set[int] = set()

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "localhost" and port in hung_ports:
            release.wait(30)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield hung_ports
    release.set()


def arrange(fault, provider, sandbox, aws, monkeypatch, request):
    prefix = provider.name
    if fault == "connect_timeout":
        monkeypatch.setenv(f"{prefix}_BASE_URL", f"http://127.0.0.1:{request.getfixturevalue('full_backlog')}")
    elif fault == "dns_timeout":
        request.getfixturevalue("hung_dns").add(sandbox.port)
        monkeypatch.setenv(f"{prefix}_BASE_URL", f"http://localhost:{sandbox.port}")
    elif fault == "auth_refused":
        aws.put_secret_value(SecretId=f"sms-status/{provider}", SecretString=json.dumps(WRONG_SECRETS[provider]))
    else:
        sandbox.inject(fault, times=None)


@pytest.mark.parametrize("provider", list(Provider), ids=str)
@pytest.mark.parametrize("fault", list(MATRIX), ids=str)
def test_every_fault_ends_in_its_pinned_error_within_the_deadline(
    fault, provider, sandboxes, short_deadline, monkeypatch, request, capsys, caplog
):
    arrange(fault, provider, sandboxes[provider], short_deadline, monkeypatch, request)
    handler = load_handler(str(provider))
    handler.service()  # the container's cold start (settings, the service), before the measured call
    resource, name, key = ROUTE[provider]
    # The level the functions run at, and urllib3's debug lines (they name hosts and paths). botocore's own debug
    # lines print whole Secrets Manager answers: never run it at DEBUG where logs are kept.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="urllib3")

    started = time.monotonic()
    status, body = call(handler, rest_event("GET", resource, {name: key}))
    elapsed = time.monotonic() - started

    assert (status, body["error"]["code"]) == MATRIX[fault], body
    assert body["error"]["details"]["provider"] == str(provider)
    assert elapsed <= DEADLINE + SLACK, f"{fault} took {elapsed:.2f}s"
    logged = capsys.readouterr()
    text = logged.out + logged.err + "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    answer = json.dumps(body)
    for secret in [*SECRETS[provider].values(), *WRONG_SECRETS[provider].values()]:
        assert secret not in text
        assert secret not in answer
    for private in (PHONE, TEXT):
        assert private not in text


def test_a_fan_out_of_hung_ids_is_504_within_the_deadline_and_leaves_no_thread_or_request_behind(sandboxes, short_deadline, monkeypatch):
    monkeypatch.setenv("FAN_OUT", "4")
    sandbox = sandboxes[Provider.WWT]
    sandbox.inject(Fault.TIMEOUT, times=None)
    handler = load_handler("wwt")

    started = time.monotonic()
    status, body = call(handler, rest_event("POST", "/wwt/status", body={"ids": [str(n) for n in range(1, 13)]}))
    elapsed = time.monotonic() - started

    assert (status, body["error"]["code"]) == TIMEOUT
    assert elapsed <= DEADLINE + SLACK
    assert sandbox.max_in_flight <= 4
    assert len(sandbox.requests) == 4  # the ids not started by the deadline were never asked
    assert not [t for t in threading.enumerate() if t.name.startswith("wwt-lookup")]


def test_a_refused_secret_is_re_read_once_and_both_attempts_share_the_deadline(sandboxes, short_deadline, monkeypatch):
    """The retry with the re-read secret does not get a budget of its own: a provider refusing the cached secret
    and hanging on the re-read one still ends by the one deadline."""
    # Secrets Manager (moto) answers at once here: let the re-read happen even this close to the deadline.
    monkeypatch.setattr(SecretSource, "read_budget", 0.0)
    sandbox = sandboxes[Provider.WWT]
    handler = load_handler("wwt")
    assert call(handler, rest_event("GET", "/wwt/messages/{id}", {"id": "211"}))[0] == 200  # the secret is cached
    sandbox.api_key = "rotated-key"  # the cached secret is refused from now on...
    short_deadline.put_secret_value(SecretId="sms-status/wwt", SecretString=json.dumps({"api_key": "rotated-key"}))
    sandbox.inject(Fault.TIMEOUT, times=None, match=lambda request: request.headers.get("x-api-key") == "rotated-key")

    started = time.monotonic()
    status, body = call(handler, rest_event("GET", "/wwt/messages/{id}", {"id": "211"}))
    elapsed = time.monotonic() - started

    assert (status, body["error"]["code"]) == TIMEOUT  # ...and the re-read one hangs
    assert elapsed <= DEADLINE + SLACK
    keys = [r.headers.get("x-api-key") for r in sandbox.requests]
    assert keys[1:] == [wwt.DEFAULT_CREDENTIALS["api_key"], "rotated-key"]

"""Every pinned route (README "HTTP API") through the real handlers, with moto's Secrets Manager and the sandboxes over HTTP."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from local.sandboxes import openmarket as om_sandbox
from local.sandboxes.base import Fault
from tests.apigw import call, load_handler, rest_event


@pytest.fixture
def aws(provider_secrets):
    """moto with one secret per provider, and each function pointed at its sandbox (tests/conftest.py)."""
    return provider_secrets


@pytest.fixture
def handlers(aws):
    """Each test's own cold start: the handlers read the environment `aws` set."""
    return {name: load_handler(name) for name in ("openmarket", "wooxy", "wwt")}


# ---- OpenMarket ---------------------------------------------------------------------------------
def test_openmarket_single_ticket_delivered(aws, handlers, openmarket_sandbox):
    openmarket_sandbox.add_message("12004-0328K-1232U-18C21", steps=[(0, 4)])
    status, body = call(
        handlers["openmarket"], rest_event("GET", "/openmarket/messages/{ticketId}", {"ticketId": "12004-0328K-1232U-18C21"})
    )
    assert status == 200
    assert (body["provider"], body["id"], body["status"], body["final"]) == ("openmarket", "12004-0328K-1232U-18C21", "delivered", True)
    assert body["provider_status"]["code"] == "4"


def test_openmarket_unknown_ticket_is_a_404_report(aws, handlers):
    status, body = call(handlers["openmarket"], rest_event("GET", "/openmarket/messages/{ticketId}", {"ticketId": "NOPE-1"}))
    assert status == 404
    assert (body["status"], body["id"], body["final"]) == ("not_found", "NOPE-1", True)


def test_openmarket_batch_fans_out_bounded_and_keeps_order(aws, handlers, openmarket_sandbox):
    tickets = [f"T{i:03d}" for i in range(30)]
    for ticket in tickets[:-1]:
        openmarket_sandbox.add_message(ticket, steps=[(0, 2)])
    openmarket_sandbox.latency = 0.05
    asked = [*tickets, tickets[0]]  # a duplicate is answered once
    status, body = call(handlers["openmarket"], rest_event("POST", "/openmarket/status", body={"ids": asked}))
    assert status == 200
    assert body["provider"] == "openmarket"
    assert [r["id"] for r in body["results"]] == tickets
    assert [r["status"] for r in body["results"]] == ["pending"] * 29 + ["not_found"]
    assert 1 < openmarket_sandbox.max_in_flight <= 10
    assert len(openmarket_sandbox.requests) == 30


def test_openmarket_one_failing_ticket_does_not_lose_the_batch(aws, handlers, openmarket_sandbox):
    for ticket in ("A1", "B2", "C3"):
        openmarket_sandbox.add_message(ticket, steps=[(0, 4)])
    openmarket_sandbox.inject(Fault.TIMEOUT, times=None, match=lambda request: b'"B2"' in request.body)
    status, body = call(handlers["openmarket"], rest_event("POST", "/openmarket/status", body={"ids": ["A1", "B2", "C3"]}))
    assert status == 200
    by_id = {r["id"]: r for r in body["results"]}
    assert by_id["A1"]["status"] == by_id["C3"]["status"] == "delivered"
    failed = by_id["B2"]
    assert (failed["status"], failed["final"], failed["retryable"]) == ("unknown", False, True)
    assert failed["details"]["error"]["code"] == "provider_timeout"


def test_openmarket_password_with_xml_specials_survives(aws, handlers, openmarket_sandbox):
    assert set("&<>\"'") <= set(om_sandbox.DEFAULT_CREDENTIALS["password"])
    openmarket_sandbox.add_message("X1", steps=[(0, 3)])
    status, body = call(handlers["openmarket"], rest_event("GET", "/openmarket/messages/{ticketId}", {"ticketId": "X1"}))
    assert (status, body["status"]) == (200, "sent")


# ---- Wooxy --------------------------------------------------------------------------------------
def test_wooxy_single_and_batch(aws, handlers, wooxy_sandbox):
    wooxy_sandbox.add_message("5d91537bd132fdf45916520a", steps=[(0, "delivered")], phone_number="+15555555", text="secret text")
    status, body = call(handlers["wooxy"], rest_event("GET", "/wooxy/messages/{id}", {"id": "5d91537bd132fdf45916520a"}))
    assert (status, body["status"], body["recipient"]) == (200, "delivered", "+15555555")
    assert "secret text" not in json.dumps(body)

    ids = [f"id{i}" for i in range(100)]
    status, body = call(handlers["wooxy"], rest_event("POST", "/wooxy/status", body={"ids": ids}))
    assert status == 200
    assert [r["id"] for r in body["results"]] == ids
    assert {r["status"] for r in body["results"]} == {"not_found"}
    assert wooxy_sandbox.max_ids_per_request == 100


def test_wooxy_more_than_100_ids_is_a_400_and_reaches_no_provider(aws, handlers, wooxy_sandbox):
    status, body = call(handlers["wooxy"], rest_event("POST", "/wooxy/status", body={"ids": [str(i) for i in range(101)]}))
    assert status == 400
    assert body["error"]["code"] == "invalid_request"
    assert wooxy_sandbox.requests == []


# ---- WWT ----------------------------------------------------------------------------------------
def test_wwt_by_id_and_by_reference(aws, handlers, wwt_sandbox):
    wwt_sandbox.add_message("211", steps=[(0, "delivered")], reference="ext19", msisdn="380972000001", price=0.23, currency="EUR")
    status, body = call(handlers["wwt"], rest_event("GET", "/wwt/messages/{id}", {"id": "211"}))
    assert (status, body["status"], body["price"], body["currency"]) == (200, "delivered", 0.23, "EUR")
    status, body = call(handlers["wwt"], rest_event("GET", "/wwt/references/{reference}", {"reference": "ext19"}))
    assert (status, body["id"], body["status"]) == (200, "ext19", "delivered")
    status, body = call(handlers["wwt"], rest_event("POST", "/wwt/status", body={"references": ["ext19", "nope"]}))
    assert [r["status"] for r in body["results"]] == ["delivered", "not_found"]


@pytest.mark.parametrize(
    ("resource", "params", "body"),
    [
        ("/wwt/messages/{id}", {"id": "12a"}, None),
        ("/wwt/references/{reference}", {"reference": "a" * 33}, None),
        ("/wwt/status", None, {"ids": ["1", "x-1"]}),
        ("/wwt/status", None, {"references": ["ok", "not-ok"]}),
    ],
)
def test_wwt_bad_ids_are_400_before_any_request(aws, handlers, wwt_sandbox, resource, params, body):
    method = "POST" if body else "GET"
    status, answer = call(handlers["wwt"], rest_event(method, resource, params, body))
    assert status == 400
    assert answer["error"]["code"] == "invalid_request"
    assert wwt_sandbox.requests == []


# ---- error classes ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "http_status", "code"),
    [
        (Fault.TIMEOUT, 504, "provider_timeout"),
        (Fault.SERVER_ERROR, 503, "provider_unavailable"),
        (Fault.RESET, 503, "provider_unavailable"),
        (Fault.MALFORMED, 502, "provider_error"),
        (Fault.HTML, 502, "provider_error"),
    ],
)
def test_provider_failures_map_to_the_pinned_errors(aws, handlers, wooxy_sandbox, fault, http_status, code):
    wooxy_sandbox.inject(fault, times=None)
    status, body = call(handlers["wooxy"], rest_event("GET", "/wooxy/messages/{id}", {"id": "abc"}))
    assert status == http_status
    assert body["error"]["code"] == code
    assert body["error"]["details"]["provider"] == "wooxy"


def test_a_batch_where_every_id_fails_the_same_way_is_the_error(aws, handlers, wwt_sandbox):
    wwt_sandbox.inject(Fault.TIMEOUT, times=None)
    status, body = call(handlers["wwt"], rest_event("POST", "/wwt/status", body={"ids": ["1", "2", "3"]}))
    assert (status, body["error"]["code"]) == (504, "provider_timeout")


def test_rotated_credentials_are_fetched_again_once(aws, handlers, wwt_sandbox):
    wwt_sandbox.add_message("7", steps=[(0, "sent")])
    assert call(handlers["wwt"], rest_event("GET", "/wwt/messages/{id}", {"id": "7"}))[0] == 200  # secret now cached
    wwt_sandbox.api_key = "live_rotated"
    aws.put_secret_value(SecretId="sms-status/wwt", SecretString=json.dumps({"api_key": "live_rotated"}))
    status, body = call(handlers["wwt"], rest_event("GET", "/wwt/messages/{id}", {"id": "7"}))
    assert (status, body["status"]) == (200, "sent")


def test_credentials_refused_even_after_refetch_is_a_credentials_error(aws, handlers, wooxy_sandbox):
    wooxy_sandbox.access_token = "something-else"
    status, body = call(handlers["wooxy"], rest_event("GET", "/wooxy/messages/{id}", {"id": "abc"}))
    assert (status, body["error"]["code"]) == (503, "credentials_error")
    auth_attempts = len(wooxy_sandbox.requests)
    assert auth_attempts == 2  # the cached secret, then the re-read one


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("not json", "not valid JSON"),
        (json.dumps({"access_tokn": "x"}), "sms-status/wooxy"),
        (json.dumps(["x"]), "sms-status/wooxy"),
    ],
)
def test_a_malformed_secret_is_a_503_naming_the_secret_not_the_value(aws, handlers, secret, message):
    aws.put_secret_value(SecretId="sms-status/wooxy", SecretString=secret)
    status, body = call(handlers["wooxy"], rest_event("GET", "/wooxy/messages/{id}", {"id": "abc"}))
    assert (status, body["error"]["code"]) == (503, "credentials_error")
    assert message in body["error"]["message"]
    assert "access_tokn" not in json.dumps(body) or "x" not in body["error"]["message"]


def test_a_missing_secret_is_a_503(aws, handlers, monkeypatch):
    monkeypatch.setenv("WWT_SECRET_NAME", "sms-status/absent")
    status, body = call(load_handler("wwt"), rest_event("GET", "/wwt/messages/{id}", {"id": "1"}))
    assert (status, body["error"]["code"]) == (503, "credentials_error")
    assert "sms-status/absent" in body["error"]["message"]


@pytest.mark.parametrize("name", ["wooxy", "tracked"])
def test_a_function_missing_a_setting_answers_500_naming_it_on_every_call(aws, monkeypatch, name):
    variable = {"wooxy": "WOOXY_SECRET_NAME", "tracked": "STATUS_TABLE_NAME"}[name]
    monkeypatch.delenv(variable, raising=False)
    handler = load_handler(name)  # its cold start succeeds: the setting is read on first use
    route = ("/wooxy/messages/{id}", {"id": "abc"}) if name == "wooxy" else ("/tracked/{provider}/{id}", {"provider": "wooxy", "id": "abc"})
    for _ in range(2):
        status, body = call(handler, rest_event("GET", *route))
        assert (status, body["error"]["code"]) == (500, "internal_error")
        assert body["error"]["message"] == f"configuration error: {variable} is not set"


def test_bad_json_body_is_a_400(aws, handlers):
    status, body = call(handlers["openmarket"], rest_event("POST", "/openmarket/status", body="{oops"))
    assert (status, body["error"]["code"]) == (400, "invalid_request")


def test_an_unknown_route_is_a_404_error(aws, handlers):
    status, body = call(handlers["wooxy"], rest_event("GET", "/wooxy/nothing/{x}", {"x": "1"}))
    assert (status, body["error"]["code"]) == (404, "invalid_request")


# ---- observability ------------------------------------------------------------------------------
def test_logs_and_metrics_never_carry_secrets_or_phone_numbers(aws, handlers, wooxy_sandbox, openmarket_sandbox, capsys):
    wooxy_sandbox.add_message("m1", steps=[(0, "sent")], phone_number="+15550001234", text="your code is 991")
    openmarket_sandbox.add_message("T1", steps=[(0, 4)])
    call(handlers["wooxy"], rest_event("POST", "/wooxy/status", body={"ids": ["m1", "m2"]}))
    call(handlers["openmarket"], rest_event("GET", "/openmarket/messages/{ticketId}", {"ticketId": "T1"}))
    wooxy_sandbox.access_token = "rotated"  # force an auth error path too
    call(handlers["wooxy"], rest_event("GET", "/wooxy/messages/{id}", {"id": "m1"}))
    out = capsys.readouterr().out
    assert "Lookups" in out  # the metric was emitted
    metric = next(json.loads(line) for line in out.splitlines() if '"Lookups"' in line and '"sent"' in line)
    assert (metric["provider"], metric["status"], metric["Lookups"]) == ("wooxy", "sent", [1.0])
    for leaked in ("+15550001234", "your code is 991", "sandbox-wooxy-token", om_sandbox.DEFAULT_CREDENTIALS["password"]):
        assert leaked not in out


def test_an_answer_survives_a_missing_metrics_namespace(aws, handlers, wooxy_sandbox, monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    wooxy_sandbox.add_message("m1", steps=[(0, "sent")])
    status, body = call(handlers["wooxy"], rest_event("GET", "/wooxy/messages/{id}", {"id": "m1"}))
    assert (status, body["status"]) == (200, "sent")


# ---- hostile input: a 400 with the error JSON, never a 500 ------------------------------------------------------
@pytest.mark.parametrize(("name", "route"), [("openmarket", "/openmarket/status"), ("wooxy", "/wooxy/status"), ("wwt", "/wwt/status")])
def test_a_body_that_is_not_utf8_is_a_400(aws, handlers, name, route):
    # API Gateway passes a body that is not UTF-8 on base64-encoded (printf '\x10\xefj' | curl --data-binary @-)
    event = rest_event("POST", route, body=base64.b64encode(b"\x10\xefj").decode()) | {"isBase64Encoded": True}
    status, body = call(handlers[name], event)
    assert (status, body["error"]["code"]) == (400, "invalid_request")


@pytest.mark.parametrize("name", ["openmarket", "wooxy", "wwt"])
def test_a_deeply_nested_body_is_a_400(aws, handlers, name):
    status, body = call(handlers[name], rest_event("POST", f"/{name}/status", body='{"ids": ' + "[" * 50_000 + "]" * 50_000 + "}"))
    assert (status, body["error"]["code"]) == (400, "invalid_request")


def test_a_path_id_is_decoded_once_as_api_gateway_passes_it_encoded(aws, handlers, wooxy_sandbox):
    wooxy_sandbox.add_message("a b", steps=[(0, "sent")])
    event = rest_event("GET", "/wooxy/messages/{id}", {"id": "a%20b"})  # path and pathParameters as API Gateway REST gives them
    status, body = call(handlers["wooxy"], event)
    assert (status, body["id"], body["status"]) == (200, "a b", "sent")
    assert json.loads(wooxy_sandbox.requests[-1].body)["ids"] == ["a b"]


def test_an_openmarket_ticket_is_measured_decoded(aws, handlers):
    ticket = "\u00e9" * 11  # 66 characters percent-encoded, 11 as meant: within OpenMarket's 64
    event = rest_event("GET", "/openmarket/messages/{ticketId}", {"ticketId": quote(ticket)})
    status, body = call(handlers["openmarket"], event)
    assert (status, body["id"]) == (404, ticket)

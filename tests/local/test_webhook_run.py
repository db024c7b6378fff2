"""`make run` with WEBHOOK_URL: a change tracked through the queue reaches a receiver on 127.0.0.1, with the
secret header, and the webhook's DLQ is listed with the other queues. The secret is never printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.webhook_receiver import WebhookReceiver
from tests.local.harness import PROVIDER_ENV, ROOT, LocalServer, http, wait_for

SECRET = "run-secret-never-printed"


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, receiver: WebhookReceiver) -> Iterator[LocalServer]:
    local = LocalServer(
        tmp_path_factory.mktemp("webhook-run"),
        {"WEBHOOK_URL": receiver.url, "WEBHOOK_SECRET": SECRET, "WEBHOOK_PROVIDERS": "openmarket"},
    )
    try:
        local.wait_ready()
        wait_for(lambda: "Ready. Ctrl-C" in local.output(), 30, "the banner")
        yield local
    finally:
        local.stop()


def test_a_final_change_is_posted_to_the_webhook_with_its_secret_header(server: LocalServer, receiver: WebhookReceiver) -> None:
    # Given an OpenMarket message that is delivered at once
    ticket = "HOOK-1"
    sandbox = f"http://127.0.0.1:{server.openmarket_port}"
    assert http("POST", f"{sandbox}/_sandbox/messages", {"id": ticket, "steps": [[0, 4]]})[0] == 200

    # When a sender enqueues it
    assert http("POST", f"{server.url}/_local/enqueue/openmarket", {"ids": [ticket]})[0] == 202

    # Then the receiver gets the change event's detail, as published on the bus, with the secret header
    def received() -> list:
        return [r for r in list(receiver.requests) if r.status == 200 and json.loads(r.body)["report"]["id"] == ticket]

    (request,) = wait_for(received, 30, "the webhook request", interval=0.2)
    assert request.headers["X-Webhook-Secret"] == SECRET
    events = [e for e in http("GET", f"{server.url}/_local/events")[1]["events"] if e["detail"]["report"]["id"] == ticket]
    assert [json.loads(request.body)] == [event["detail"] for event in events]
    assert json.loads(request.body)["report"]["final"] is True


def test_the_banner_names_the_webhook_and_its_dlq_is_a_listed_queue(server: LocalServer, receiver: WebhookReceiver) -> None:
    assert f"webhook: POST final changes of openmarket to {receiver.url}" in server.output()
    queues = {queue["queue"] for queue in http("GET", f"{server.url}/_local/queues")[1]["queues"]}
    assert "WebhookDeadLetterQueue" in queues
    assert SECRET not in server.output()


def run_briefly(env_overrides: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.endswith(tuple(f"_{suffix}" for suffix in PROVIDER_ENV))}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-m", "local.run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_a_webhook_url_off_loopback_over_http_stops_the_run_at_once(tmp_path: Path) -> None:
    done = run_briefly({"WEBHOOK_URL": "http://hooks.example.com/x", "WEBHOOK_SECRET": SECRET}, tmp_path)
    assert done.returncode == 2
    assert "WEBHOOK_URL: plain http is accepted only for loopback" in done.stderr
    assert SECRET not in done.stdout + done.stderr

"""The status webhook, locally: the template's rule, destination and connection run by local/webhooks.py against
moto, with events published by the tracking code's own publisher and received by local/webhook_receiver.py.

Time runs TIME_SCALE times faster for the retries (the rule's 24 hours are 3 s here); every wait polls with a timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local.stack import LocalAws
from local.template import LocalSetupError, load_template_checked
from local.webhook_receiver import WebhookReceiver
from local.webhooks import SECRET_LOGICAL_ID, LocalWebhook, read_route, read_webhook_settings
from sms_status.publish import EventPublisher
from tests.local.harness import wait_for
from tools.webhook_redrive import REDRIVE_SOURCE, redrive

SECRET = "s3cret-for-tests-only"
TIME_SCALE = 28_800.0  # 86,400 s of AWS time in 3 s
TIMEOUT = 1.0  # seconds an attempt may take (EventBridge: 5)
PROVIDERS = "openmarket,wooxy"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from local.template import TEMPLATE

    return load_template_checked(TEMPLATE)


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret=SECRET, hang_seconds=3) as server:
        yield server


@pytest.fixture(scope="module")
def stack(template: dict[str, Any], receiver: WebhookReceiver) -> Iterator[tuple[LocalAws, LocalWebhook]]:
    env = {
        "WEBHOOK_URL": receiver.url,
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_PROVIDERS": PROVIDERS,
        "WEBHOOK_TIME_SCALE": str(TIME_SCALE),
        "WEBHOOK_TIMEOUT": str(TIMEOUT),
    }
    settings = read_webhook_settings(env, template)
    assert settings is not None
    aws = LocalAws(settings.parameters, {SECRET_LOGICAL_ID: settings.secret}).start()
    hook = LocalWebhook.from_stack(aws, settings, log=lambda line: None).start()
    try:
        yield aws, hook
    finally:
        hook.stop()
        aws.stop()


@pytest.fixture
def fresh(receiver: WebhookReceiver) -> WebhookReceiver:
    receiver.answers.clear()
    receiver.requests.clear()
    receiver.accepted.clear()
    return receiver


_serial = iter(range(1_000_000))


def detail(provider: str, final: bool, event_id: str | None = None) -> dict[str, Any]:
    """A change event's detail as publish.change_detail makes it."""
    number = next(_serial)
    message_id = f"msg-{number}"
    status = "delivered" if final else "sent"
    return {
        "report": {"provider": provider, "id": message_id, "status": status, "final": final},
        "previous_status": "pending",
        "context": {"order": number},
        "event_id": event_id or f"{provider}#id#{message_id}#{number}",
    }


def publish(aws: LocalAws, *details: dict[str, Any]) -> None:
    assert EventPublisher(aws.client("events"), aws.buses["StatusEventBus"]).publish(list(details)) == set()


def requests_for(receiver: WebhookReceiver, event_id: str) -> list[Any]:
    return [request for request in list(receiver.requests) if json.loads(request.body).get("event_id") == event_id]


def delivered(receiver: WebhookReceiver, event_id: str) -> bool:
    """The receiver answered 200 to a request for this event (requests are recorded before they are answered)."""
    return any(request.status == 200 for request in requests_for(receiver, event_id))


def dead_letters(aws: LocalAws) -> list[dict[str, Any]]:
    sqs = aws.client("sqs")
    url = aws.queues["WebhookDeadLetterQueue"]
    found = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get("Messages", []):
        found += messages
    for message in found:  # visible again at once: the next look (or the redrive) sees them too
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return found


def dead_event_ids(aws: LocalAws) -> set[str]:
    return {json.loads(message["Body"])["detail"]["event_id"] for message in dead_letters(aws)}


# ---- the request and the filter -----------------------------------------------------------------------------------
def test_the_receiver_gets_exactly_the_selected_events_with_the_documented_request(stack, fresh: WebhookReceiver) -> None:
    aws, hook = stack
    # Given changes of every provider, final and not (the webhook: final changes of openmarket and wooxy)
    selected = [detail("openmarket", True), detail("wooxy", True)]
    others = [detail("openmarket", False), detail("wwt", True), detail("wooxy", False), detail("wwt", False)]
    publish(aws, others[0], selected[0], others[1], others[2], selected[1], others[3])

    wait_for(lambda: all(delivered(fresh, change["event_id"]) for change in selected), 10, "the selected events", interval=0.05)
    wait_for(hook.idle, 10, "the webhook to settle every event", interval=0.05)

    # Then exactly the selected changes arrived, each once, its body the event's detail
    bodies = [json.loads(request.body) for request in fresh.requests]
    assert sorted(bodies, key=lambda body: body["event_id"]) == sorted(selected, key=lambda body: body["event_id"])
    for request in fresh.requests:
        assert (request.method, request.path, request.status) == ("POST", "/hook", 200)
        headers = {name.lower(): value for name, value in request.headers.items()}
        assert headers["content-type"] == "application/json; charset=utf-8"
        assert headers["user-agent"] == "Amazon/EventBridge/ApiDestinations"
        assert headers["x-webhook-secret"] == SECRET


def test_a_request_without_the_right_secret_is_refused_by_the_receiver(fresh: WebhookReceiver) -> None:
    # The check the receiver documents (docs/webhooks.md): the header's value compared in constant time.
    body = json.dumps(detail("wooxy", True)).encode()
    assert fresh.answer({"X-Webhook-Secret": "wrong"}, body) == 401
    assert fresh.answer({}, body) == 401
    assert fresh.answer({"x-webhook-secret": SECRET}, body) == 200


def test_a_duplicate_event_id_is_accepted_once(stack, fresh: WebhookReceiver) -> None:
    aws, _ = stack
    # Given the same change published twice (the outbox's rare re-publish: same event_id)
    change = detail("openmarket", True)
    publish(aws, change)
    publish(aws, change)

    wait_for(lambda: len(requests_for(fresh, change["event_id"])) == 2, 10, "both deliveries", interval=0.05)

    # Then both were answered 200 (not retried), and the receiver kept it once
    assert [request.status for request in requests_for(fresh, change["event_id"])] == [200, 200]
    assert list(fresh.accepted) == [change["event_id"]]


# ---- retries and the DLQ ------------------------------------------------------------------------------------------
def test_a_500_then_200_is_delivered_by_the_retry(stack, fresh: WebhookReceiver) -> None:
    aws, hook = stack
    retries_before = hook.stats()["retries"]
    # Given an endpoint that fails once
    fresh.answers = [500]
    change = detail("wooxy", True)

    # When a selected change is published
    publish(aws, change)

    # Then it arrives with the retry: one 500, then one 200, and nothing in the DLQ
    wait_for(lambda: delivered(fresh, change["event_id"]), 10, "the retried delivery", interval=0.05)
    assert [request.status for request in requests_for(fresh, change["event_id"])] == [500, 200]
    assert hook.stats()["retries"] == retries_before + 1
    assert change["event_id"] not in dead_event_ids(aws)


@pytest.mark.parametrize("status", [400, 403, 404])
def test_a_refusal_eventbridge_does_not_retry_goes_to_the_dlq_at_once(stack, fresh: WebhookReceiver, status: int) -> None:
    aws, _ = stack
    fresh.answers = [status]
    change = detail("openmarket", True)
    publish(aws, change)

    message = wait_for(
        lambda: next((m for m in dead_letters(aws) if json.loads(m["Body"])["detail"]["event_id"] == change["event_id"]), None),
        10,
        "the refused event in the DLQ",
        interval=0.05,
    )
    assert len(requests_for(fresh, change["event_id"])) == 1
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == str(status)
    assert attributes["RETRY_ATTEMPTS"] == "0"
    assert "EXHAUSTED_RETRY_CONDITION" not in attributes
    _drain_dlq(aws)


def test_an_endpoint_that_never_answers_leaves_the_event_in_the_dlq_and_publishing_is_not_slowed(stack, fresh: WebhookReceiver) -> None:
    aws, _ = stack
    # Given an endpoint that never answers
    fresh.answers = ["hang"] * 100
    stuck = detail("wooxy", True)
    publish(aws, stuck)
    wait_for(lambda: fresh.open_requests >= 1, 10, "the first attempt to hang", interval=0.02)

    # When tracking publishes more changes while that delivery hangs
    started = time.monotonic()
    more = [detail("openmarket", True) for _ in range(5)]
    for change in more:
        publish(aws, change)
    took = time.monotonic() - started

    # Then publishing did not wait for the endpoint: done well within one attempt's timeout, the attempt still open
    assert took < TIMEOUT, took
    assert fresh.open_requests >= 1
    # And each event, retried until the rule's 24 hours (AWS time) ran out, is in the DLQ as EventBridge puts it
    wanted = {stuck["event_id"], *(change["event_id"] for change in more)}
    wait_for(lambda: wanted <= dead_event_ids(aws), 30, "every unanswered event in the DLQ", interval=0.2)
    messages = [m for m in dead_letters(aws) if json.loads(m["Body"])["detail"]["event_id"] == stuck["event_id"]]
    (message,) = messages
    event = json.loads(message["Body"])
    assert (event["source"], event["detail-type"], event["detail"]) == ("sms-status", "SMS Status Changed", stuck)
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "TIMEOUT"
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumEventAgeInSeconds"
    assert int(attributes["RETRY_ATTEMPTS"]) >= 1
    assert len(requests_for(fresh, stuck["event_id"])) >= 2  # it was retried, not dead-lettered at the first failure
    assert SECRET not in json.dumps(message)

    # And a redrive, once the endpoint answers again, delivers them to the webhook and empties the DLQ
    fresh.answers.clear()
    redriven, kept = redrive(aws.client("sqs"), aws.client("events"), aws.queues["WebhookDeadLetterQueue"], aws.buses["StatusEventBus"])
    assert (redriven, kept) == (len(wanted), 0)
    wait_for(lambda: wanted <= set(fresh.accepted), 10, "the redriven events", interval=0.05)
    assert dead_letters(aws) == []


def test_a_redriven_event_reaches_the_webhook_rule_only(stack) -> None:
    aws, _ = stack
    # The redrive's source is in the webhook rule's pattern, so a consumer's own sms-status rule never sees it twice.
    route = read_route(aws)
    assert route is not None
    assert REDRIVE_SOURCE in route.pattern["source"]
    assert "sms-status" in route.pattern["source"]


def _drain_dlq(aws: LocalAws) -> None:
    sqs = aws.client("sqs")
    url = aws.queues["WebhookDeadLetterQueue"]
    for message in dead_letters(aws):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


# ---- settings and the template's condition --------------------------------------------------------------------------
def test_no_webhook_url_no_webhook(template: dict[str, Any]) -> None:
    assert read_webhook_settings({}, template) is None


def test_the_settings_fill_the_template_parameters(template: dict[str, Any]) -> None:
    env = {"WEBHOOK_URL": "https://hooks.example.com/sms?x=1", "WEBHOOK_SECRET": "Zq-unique-secret", "WEBHOOK_EVENTS": "all"}
    settings = read_webhook_settings(env, template)
    assert settings is not None
    assert settings.parameters == {
        "WebhookUrl": "https://hooks.example.com/sms?x=1",
        "WebhookAuthHeader": "X-Webhook-Secret",
        "WebhookProviders": "openmarket,wooxy,wwt",
        "WebhookEvents": "all",
    }
    assert "Zq-unique-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WEBHOOK_URL": "http://hooks.example.com/x", "WEBHOOK_SECRET": "v"}, "plain http"),
        ({"WEBHOOK_URL": "ftp://127.0.0.1/x", "WEBHOOK_SECRET": "v"}, "https://"),
        ({"WEBHOOK_URL": "https://h.example.com/*", "WEBHOOK_SECRET": "v"}, r"'\*'"),
        ({"WEBHOOK_URL": "https://user:pw@h.example.com/", "WEBHOOK_SECRET": "v"}, "credentials"),
        ({"WEBHOOK_URL": "https://h.example.com/"}, "needs WEBHOOK_SECRET"),
        ({"WEBHOOK_URL": "https://h.example.com/", "WEBHOOK_SECRET": "v", "WEBHOOK_PROVIDERS": "wooxy,sms"}, "WEBHOOK_PROVIDERS"),
        ({"WEBHOOK_URL": "https://h.example.com/", "WEBHOOK_SECRET": "v", "WEBHOOK_EVENTS": "some"}, "WEBHOOK_EVENTS"),
        ({"WEBHOOK_URL": "https://h.example.com/", "WEBHOOK_SECRET": "v", "WEBHOOK_AUTH_HEADER": "X Bad"}, "WEBHOOK_AUTH_HEADER"),
        ({"WEBHOOK_URL": "https://h.example.com/", "WEBHOOK_SECRET": "v", "WEBHOOK_TIME_SCALE": "0.5"}, "WEBHOOK_TIME_SCALE"),
    ],
)
def test_bad_settings_are_refused_by_name(template: dict[str, Any], env: dict[str, str], message: str) -> None:
    with pytest.raises(LocalSetupError, match=message) as refused:
        read_webhook_settings(env, template)
    assert "pw" not in str(refused.value)

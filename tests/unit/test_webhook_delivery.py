"""local/webhooks.py's retry rules, one attempt at a time against a receiver on 127.0.0.1 (no threads, no moto),
and tools/webhook_redrive.py against moto."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from local.webhook_receiver import WebhookReceiver
from local.webhooks import BACKOFF_CAP, BACKOFF_FIRST, LocalWebhook, Route, _Pending, backoff

EVENT = {
    "source": "sms-status",
    "detail-type": "SMS Status Changed",
    "detail": {"report": {"provider": "wwt", "id": "211", "status": "delivered", "final": True}, "event_id": "wwt#id#211#2"},
}


class FakeSqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        self.sent.append(kwargs)
        return {"MessageId": str(len(self.sent))}


class FakeAws:
    def __init__(self, sqs: FakeSqs) -> None:
        self.sqs = sqs

    def client(self, service: str) -> Any:
        assert service == "sqs"
        return self.sqs


def route(endpoint: str, max_retries: int = 185, max_age: float = 86400) -> Route:
    return Route(
        rule_arn="arn:aws:events:us-east-1:123456789012:rule/bus/WebhookRule",
        target_arn="arn:aws:events:us-east-1:123456789012:api-destination/WebhookDestination",
        bus="bus",
        pattern={},
        input_path="$.detail",
        endpoint=endpoint,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "X-Webhook-Secret": "s"},
        rate_limit=300,
        max_age=max_age,
        max_retries=max_retries,
        dlq_url="https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
    )


def attempt_until_settled(hook: LocalWebhook, sqs: FakeSqs, limit: int = 50) -> tuple[_Pending, int]:
    """Attempts one after another (ignoring the backoff's wait) until the event is delivered or dead-lettered."""
    item = _Pending(0.0, 0, EVENT, time.monotonic())
    for attempts in range(1, limit + 1):
        before = (hook.counts["delivered"], len(sqs.sent))
        hook._settle(item, hook.send(item.event))
        if (hook.counts["delivered"], len(sqs.sent)) != before:
            return item, attempts
    raise AssertionError(f"not settled after {limit} attempts")


def attributes(message: dict[str, Any]) -> dict[str, str]:
    return {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}


@pytest.fixture
def receiver():
    with WebhookReceiver(secret="s") as server:
        yield server


def test_backoff_doubles_from_one_second_up_to_the_cap_with_jitter() -> None:
    for retry in range(1, 40):
        ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (retry - 1))
        assert all(ceiling / 2 <= backoff(retry) <= ceiling for _ in range(20)), retry
    assert backoff(30) <= BACKOFF_CAP


def test_retries_stop_after_maximum_retry_attempts(receiver: WebhookReceiver) -> None:
    receiver.answers = [500] * 10
    sqs = FakeSqs()
    hook = LocalWebhook(FakeAws(sqs), route(receiver.url, max_retries=2), time_scale=1, timeout=2, log=lambda line: None)

    _, attempts = attempt_until_settled(hook, sqs)

    assert attempts == 3  # the first attempt and 2 retries
    ((message),) = sqs.sent
    assert json.loads(message["MessageBody"]) == EVENT  # the whole event, as EventBridge dead-letters it
    assert attributes(message) == {
        "RULE_ARN": "arn:aws:events:us-east-1:123456789012:rule/bus/WebhookRule",
        "TARGET_ARN": "arn:aws:events:us-east-1:123456789012:api-destination/WebhookDestination",
        "ERROR_CODE": "500",
        "ERROR_MESSAGE": "the endpoint answered HTTP 500",
        "RETRY_ATTEMPTS": "2",
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
    }
    assert hook.counts == {"delivered": 0, "retries": 2, "dead_lettered": 1}


@pytest.mark.parametrize("status", [401, 407, 409, 429, 500, 502, 503, 504])
def test_what_eventbridge_retries_is_retried(receiver: WebhookReceiver, status: int) -> None:
    receiver.answers = [status]
    sqs = FakeSqs()
    hook = LocalWebhook(FakeAws(sqs), route(receiver.url), time_scale=1, timeout=2, log=lambda line: None)

    _, attempts = attempt_until_settled(hook, sqs)

    assert (attempts, sqs.sent, hook.counts["delivered"]) == (2, [], 1)
    assert [request.status for request in receiver.requests] == [status, 200]
    assert json.loads(receiver.requests[-1].body) == EVENT["detail"]  # InputPath $.detail


@pytest.mark.parametrize("status", [301, 400, 403, 404, 410, 413])
def test_any_other_answer_is_dead_lettered_at_once(receiver: WebhookReceiver, status: int) -> None:
    receiver.answers = [status]
    sqs = FakeSqs()
    hook = LocalWebhook(FakeAws(sqs), route(receiver.url), time_scale=1, timeout=2, log=lambda line: None)

    _, attempts = attempt_until_settled(hook, sqs)

    assert attempts == 1
    assert attributes(sqs.sent[0])["ERROR_CODE"] == str(status)
    assert "EXHAUSTED_RETRY_CONDITION" not in attributes(sqs.sent[0])


def test_a_refused_connection_is_retried_until_the_event_is_too_old() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sqs = FakeSqs()
    # 1 s of real time is a whole day here.
    hook = LocalWebhook(FakeAws(sqs), route(f"http://127.0.0.1:{port}/hook"), time_scale=86_400, timeout=1, log=lambda line: None)

    fresh = _Pending(0.0, 0, EVENT, time.monotonic())
    hook._settle(fresh, outcome := hook.send(fresh.event))
    assert (outcome.code, outcome.retried) == ("CONNECTION_ERROR", True)
    assert (sqs.sent, fresh.retries) == ([], 1)  # a young event: retried

    old = _Pending(0.0, 1, EVENT, time.monotonic() - 1.0)  # published a day ago (AWS time)
    hook._settle(old, hook.send(old.event))
    assert attributes(sqs.sent[0])["EXHAUSTED_RETRY_CONDITION"] == "MaximumEventAgeInSeconds"
    assert attributes(sqs.sent[0])["ERROR_CODE"] == "CONNECTION_ERROR"


def test_the_redrive_puts_events_back_under_the_redrive_source_and_leaves_what_is_not_an_event() -> None:
    import boto3
    from moto import mock_aws

    from tools.webhook_redrive import REDRIVE_SOURCE, redrive

    with mock_aws():
        sqs, events = boto3.client("sqs", region_name="us-east-1"), boto3.client("events", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        seen = sqs.create_queue(QueueName="seen")["QueueUrl"]
        events.create_event_bus(Name="bus")
        events.put_rule(Name="all", EventBusName="bus", EventPattern=json.dumps({"source": [{"prefix": ""}]}))
        events.put_targets(Rule="all", EventBusName="bus", Targets=[{"Id": "seen", "Arn": "arn:aws:sqs:us-east-1:123456789012:seen"}])
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(EVENT))
        sqs.send_message(QueueUrl=dlq, MessageBody="not an event")

        assert redrive(sqs, events, dlq, "bus") == (1, 1)

        (message,) = sqs.receive_message(QueueUrl=seen, MaxNumberOfMessages=10)["Messages"]
        event = json.loads(message["Body"])
        assert (event["source"], event["detail-type"], event["detail"]) == (REDRIVE_SOURCE, EVENT["detail-type"], EVENT["detail"])
        left = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        assert left["ApproximateNumberOfMessagesNotVisible"] == "1"  # the one that is not an event stays in the DLQ

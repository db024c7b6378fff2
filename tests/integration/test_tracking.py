"""The queue path end to end: moto SQS (with a DLQ), DynamoDB and EventBridge (a rule to a capture queue), the
sandboxes over HTTP, and the REAL functions/<provider>/app.py handlers fed real-shaped SQS events built from
messages received from the moto queue. After each invocation the test deletes the records that did not fail,
as Lambda's event source mapping does; failed ones stay and come back after the visibility timeout."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import boto3
import pytest

from local.sandboxes.base import Fault
from sms_status.model import iso, utcnow
from sms_status.store import MAX_CODE_CHARS
from sms_status.tracking.rules import OUTBOX_GRACE
from tests.apigw import LambdaContext, call, load_handler, rest_event
from tests.sqs_events import SqsClock, sqs_record

MAX_RECEIVES = 3
VISIBILITY = 30
TABLE = "sms-status-test"
BUS = "sms-status-test-bus"


class Stack:
    """The AWS side of one provider's queue path, in moto."""

    def __init__(self, provider: str, clock: SqsClock) -> None:
        self.provider = provider
        self.clock = clock
        self.sqs = boto3.client("sqs")
        self.dlq_url = self.sqs.create_queue(QueueName=f"{provider}-tracking-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)})
        self.queue_url = self.sqs.create_queue(
            QueueName=f"{provider}-tracking", Attributes={"VisibilityTimeout": str(VISIBILITY), "RedrivePolicy": redrive}
        )["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        # The service's own re-check queue: senders never write to it (template: only the function may)
        self.recheck_dlq_url = self.sqs.create_queue(QueueName=f"{provider}-recheck-dlq")["QueueUrl"]
        recheck_dlq_arn = self.arn_of(self.recheck_dlq_url)
        self.recheck_url = self.sqs.create_queue(
            QueueName=f"{provider}-recheck",
            Attributes={
                "VisibilityTimeout": str(VISIBILITY),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": recheck_dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}),
            },
        )["QueueUrl"]
        self.recheck_arn = self.arn_of(self.recheck_url)
        self.arns = {self.queue_url: self.queue_arn, self.recheck_url: self.recheck_arn}
        self.capture_url = self.sqs.create_queue(QueueName="capture")["QueueUrl"]
        capture_arn = self.sqs.get_queue_attributes(QueueUrl=self.capture_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events")
        events.create_event_bus(Name=BUS)
        events.put_rule(Name="capture", EventBusName=BUS, EventPattern=json.dumps({"source": ["sms-status"]}))
        events.put_targets(Rule="capture", EventBusName=BUS, Targets=[{"Id": "capture", "Arn": capture_arn}])
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.table = boto3.resource("dynamodb").Table(TABLE)
        self.handler = load_handler(f"{provider}_tracking")

    def arn_of(self, url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    # ---- the sender's side ----------------------------------------------------------------------------
    def enqueue(self, body: dict | str) -> str:
        raw = body if isinstance(body, str) else json.dumps(body)
        return self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=raw)["MessageId"]

    # ---- Lambda's event source mapping ----------------------------------------------------------------
    def receive(self) -> list[dict]:
        """Messages due on both queues the function consumes (the sender's and its own re-check queue)."""
        messages = []
        for url in (self.queue_url, self.recheck_url):
            answer = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])
            messages += [{**message, "QueueUrl": url} for message in answer.get("Messages", [])]
        return messages

    def invoke(self, messages: list[dict], context: object | None = None) -> dict:
        records = [sqs_record(m, self.arns[m["QueueUrl"]]) for m in messages]
        return self.handler.lambda_handler({"Records": records}, context or LambdaContext())

    def poll(self, context: object | None = None) -> tuple[list[dict], set[str]]:
        """One event-source-mapping round: receive, invoke, delete what succeeded. Returns (messages, failed ids)."""
        messages = self.receive()
        if not messages:
            return [], set()
        response = self.invoke(messages, context)
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=message["QueueUrl"], ReceiptHandle=message["ReceiptHandle"])
        return messages, failed

    # ---- what came out --------------------------------------------------------------------------------
    def events(self) -> list[dict]:
        found = []
        while batch := self.sqs.receive_message(QueueUrl=self.capture_url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.capture_url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def receive_delayed(self) -> list[dict]:
        """The re-check messages waiting on the re-check queue, read without disturbing them (moto's clock moved on)."""
        self.clock.advance(3600)
        messages = self.sqs.receive_message(QueueUrl=self.recheck_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        self.clock.advance(-3600)
        return messages

    def counts(self, url: str | None = None) -> dict[str, int]:
        """Messages on one queue, or on both the function consumes (the sender's and the re-check queue)."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible"]
        totals = {"visible": 0, "delayed": 0, "in_flight": 0}
        for queue in [url] if url else [self.queue_url, self.recheck_url]:
            attributes = self.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names)["Attributes"]
            for total, name in zip(totals, names, strict=True):
                totals[total] += int(attributes[name])
        return totals

    def item(self, kind: str, message_id: str) -> dict | None:
        return self.table.get_item(Key={"pk": f"{self.provider}#{kind}#{message_id}"}).get("Item")


@pytest.fixture
def sqs_clock(monkeypatch):
    return SqsClock(monkeypatch)


@pytest.fixture
def aws(monkeypatch, provider_secrets, sqs_clock):
    """moto with the secrets (tests/conftest.py) and one Stack factory; each provider function points at its sandbox."""
    monkeypatch.setenv("PROVIDER_RETRIES", "0")  # the queue path retries through SQS, not in-call
    monkeypatch.setenv("STATUS_TABLE_NAME", TABLE)
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    monkeypatch.setenv("QUERY_WINDOW_HOURS", "72")

    def stack(provider: str) -> Stack:
        built = Stack(provider, sqs_clock)
        monkeypatch.setenv("RECHECK_QUEUE_URL", built.recheck_url)
        monkeypatch.setenv("RECHECK_QUEUE_ARN", built.recheck_arn)
        return built

    return stack  # each Stack loads its function anew: a cold start that reads the environment set here


def statuses(events: list[dict]) -> list[tuple[str | None, str]]:
    return [(e["detail"]["previous_status"], e["detail"]["report"]["status"]) for e in events]


# ---- malformed records ------------------------------------------------------------------------------
def test_a_batch_mixing_good_and_malformed_records_fails_only_the_bad_ones(aws, wwt_sandbox, caplog):
    # Given one good message and five that can never succeed (one carrying a phone number in its context)
    stack = aws("wwt")
    wwt_sandbox.add_message("211", steps=[(0, "delivered")], reference="ext19")
    good = stack.enqueue({"ids": ["211"], "context": {"order": "A-1"}})
    bad = {
        stack.enqueue("this is not json"),
        stack.enqueue({"ids": []}),
        stack.enqueue({"ids": ["not-a-wwt-id"]}),
        stack.enqueue({"ids": ["211"], "context": {"phone": "+15551234567"}, "text": "Hello Alice"}),
        stack.enqueue({"ids": ["211"], "references": ["ext19"]}),
    }
    # When one batch holds all six
    messages, failed = stack.poll()
    # Then only the bad ones are batch item failures, and the good one was stored and published
    assert len(messages) == 6
    assert failed == bad
    assert good not in failed
    item = stack.item("id", "211")
    assert item["status"] == "delivered"
    events = stack.events()
    assert len(events) == 1
    assert events[0]["source"] == "sms-status"
    assert events[0]["detail-type"] == "SMS Status Changed"
    assert events[0]["detail"]["context"] == {"order": "A-1"}
    # and every rejection is logged with its reason, never with the record's content
    rejected = [record for record in caplog.records if record.getMessage() == "tracking message rejected"]
    assert len(rejected) == 5
    assert all(record.reason for record in rejected)
    everything_logged = " ".join(str(vars(record)) for record in caplog.records)
    assert "+15551234567" not in everything_logged
    assert "Hello Alice" not in everything_logged


def test_a_batch_with_no_time_left_for_lookups_fails_nothing_and_checks_later(aws, sqs_clock, wooxy_sandbox):
    class OutOfTime(LambdaContext):
        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 1  # nothing left for the provider: the lookup deadline has passed before it starts

    stack = aws("wooxy")
    wooxy_sandbox.add_message("5d91537bd132fdf45916520a", steps=[(0, "delivered")])
    stack.enqueue({"ids": ["5d91537bd132fdf45916520a"], "context": {"order": "B-2"}})
    # When the invocation has no time for the provider, nothing is asked and no record fails
    messages, failed = stack.poll(OutOfTime())
    assert (len(messages), failed) == (1, set())
    assert wooxy_sandbox.requests == []
    # The id is followed all the same: an item with no answer yet holds its chain and the sender's context
    item = stack.item("id", "5d91537bd132fdf45916520a")
    assert ("report" in item, json.loads(item["context"])) == (False, {"order": "B-2"})
    (recheck,) = stack.receive_delayed()
    assert json.loads(recheck["Body"])["chains"] == [item["chain"]]
    # and the re-check, 30 s later, asks and stores the answer
    sqs_clock.advance(31)
    assert stack.poll()[1] == set()
    assert stack.item("id", "5d91537bd132fdf45916520a")["status"] == "delivered"
    assert [e["detail"]["context"] for e in stack.events()] == [{"order": "B-2"}]


def test_a_malformed_record_fails_on_every_receive_and_lands_in_the_dlq(aws, sqs_clock):
    stack = aws("wooxy")
    message_id = stack.enqueue({"ids": "5d91537bd132fdf45916520a"})  # a string, not an array
    for _ in range(MAX_RECEIVES):
        _, failed = stack.poll()
        assert failed == {message_id}
        sqs_clock.advance(VISIBILITY + 1)
    assert stack.receive() == []  # the next receive moves it to the DLQ instead
    dead = stack.sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [m["MessageId"] for m in dead] == [message_id]
    assert json.loads(dead[0]["Body"]) == {"ids": "5d91537bd132fdf45916520a"}


# ---- provider outage ---------------------------------------------------------------------------------
def test_a_provider_outage_reschedules_the_checks_and_never_reaches_the_dlq(aws, sqs_clock, openmarket_sandbox):
    stack = aws("openmarket")
    openmarket_sandbox.add_message("T-1", steps=[(0, 4)])
    openmarket_sandbox.add_message("T-2", steps=[(0, 4)])
    openmarket_sandbox.inject(Fault.UNAVAILABLE, times=None)
    stack.enqueue({"ids": ["T-1"]})
    stack.enqueue({"ids": ["T-2"]})

    # Each check during the outage succeeds as a record and sends the next check on the backoff: 30 s, 60 s, 120 s;
    # the two senders' ids travel on together in one re-check message
    for attempt, wait in enumerate((30, 60, 120)):
        messages, failed = stack.poll()
        assert len(messages) == (2 if attempt == 0 else 1)
        assert failed == set()
        assert {json.loads(m["Body"]).get("attempt", 0) for m in messages} == {attempt}
        assert stack.counts() == {"visible": 0, "delayed": 1, "in_flight": 0}
        assert sorted(json.loads(stack.receive_delayed()[0]["Body"])["ids"]) == ["T-1", "T-2"]
        sqs_clock.advance(wait - 1)
        assert stack.receive() == []  # not before its backoff
        sqs_clock.advance(2)

    # When the provider is back, the next check answers, and nothing went to the DLQ
    openmarket_sandbox.clear_faults()
    assert stack.poll()[1] == set()
    assert stack.item("id", "T-1")["status"] == "delivered"
    assert stack.item("id", "T-2")["status"] == "delivered"
    assert sorted(statuses(stack.events())) == [(None, "delivered"), (None, "delivered")]
    assert stack.sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10).get("Messages", []) == []
    assert stack.counts() == {"visible": 0, "delayed": 0, "in_flight": 0}


def test_refused_credentials_reschedule_like_an_outage(aws, sqs_clock, wooxy_sandbox):
    stack = aws("wooxy")
    wooxy_sandbox.add_message("5d91537bd132fdf45916520a", steps=[(0, "delivered")])
    token, wooxy_sandbox.access_token = wooxy_sandbox.access_token, "rotated-away"
    stack.enqueue({"ids": ["5d91537bd132fdf45916520a"]})
    assert stack.poll()[1] == set()
    assert stack.counts() == {"visible": 0, "delayed": 1, "in_flight": 0}
    wooxy_sandbox.access_token = token  # the provider takes the stored secret again
    sqs_clock.advance(31)
    assert stack.poll()[1] == set()
    assert stack.item("id", "5d91537bd132fdf45916520a")["status"] == "delivered"


def test_after_a_one_off_failure_the_next_check_succeeds(aws, sqs_clock, openmarket_sandbox):
    stack = aws("openmarket")
    openmarket_sandbox.add_message("T-1", steps=[(0, 4)])
    openmarket_sandbox.inject(Fault.SERVER_ERROR, times=1)
    stack.enqueue({"ids": ["T-1"]})
    assert stack.poll()[1] == set()
    sqs_clock.advance(31)
    assert stack.poll()[1] == set()
    assert stack.item("id", "T-1")["status"] == "delivered"
    assert statuses(stack.events()) == [(None, "delivered")]


# ---- duplicates ---------------------------------------------------------------------------------------
def test_duplicate_deliveries_publish_one_event_and_converge_on_one_chain(aws, sqs_clock, wooxy_sandbox):
    stack = aws("wooxy")
    wooxy_sandbox.add_message("5d91537bd132fdf45916520a", steps=[(0, "queued")])
    body = {"ids": ["5d91537bd132fdf45916520a"], "context": {"campaign": 7}}
    # SQS delivers the same message twice (and a sender enqueued it twice)
    stack.enqueue(body)
    messages, failed = stack.poll()
    assert failed == set()
    # The very same record again (what a crash between the claim and the send looks like): it recognises its own
    # claim and sends its re-check again; the sender's second message finds the id claimed and sends nothing
    assert stack.invoke(messages) == {"batchItemFailures": []}
    stack.enqueue(body)
    assert stack.poll()[1] == set()
    assert statuses(stack.events()) == [(None, "pending")]
    assert stack.counts()["delayed"] == 2  # the claimed chain, sent twice: the bound is one message per redelivery
    # When both copies come due, the first to claim the id continues the chain and the other stops
    sqs_clock.advance(31)
    messages, failed = stack.poll()
    assert (len(messages), failed) == (2, set())
    assert stack.counts()["delayed"] == 1
    assert [stack.item("id", "5d91537bd132fdf45916520a")["chain"]] == json.loads(stack.receive_delayed()[0]["Body"])["chains"]


def test_a_sender_cannot_forge_a_recheck(aws, sqs_clock, wooxy_sandbox):
    stack = aws("wooxy")
    wooxy_sandbox.add_message("5d91537bd132fdf45916520e", steps=[(0, "queued")])
    # A `since` in the past would settle the message at once as a final unknown; the internal fields are refused
    forged = stack.enqueue({"ids": ["5d91537bd132fdf45916520e"], "since": "2001-01-01T00:00:00Z"})
    for _ in range(MAX_RECEIVES):
        assert stack.poll()[1] == {forged}
        sqs_clock.advance(VISIBILITY + 1)
    assert stack.receive() == []  # SQS moves it to the DLQ at the receive after the last allowed one
    dead = stack.sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [m["MessageId"] for m in dead] == [forged]  # malformed: the sender's to fix, kept in the DLQ
    assert stack.item("id", "5d91537bd132fdf45916520e") is None
    assert stack.events() == []
    assert wooxy_sandbox.requests == []


def test_recheck_messages_go_to_the_recheck_queue_only(aws, wooxy_sandbox):
    stack = aws("wooxy")
    wooxy_sandbox.add_message("5d91537bd132fdf45916520e", steps=[(0, "queued")])
    stack.enqueue({"ids": ["5d91537bd132fdf45916520e"]})
    assert stack.poll()[1] == set()
    assert stack.counts(stack.queue_url) == {"visible": 0, "delayed": 0, "in_flight": 0}
    assert stack.counts(stack.recheck_url) == {"visible": 0, "delayed": 1, "in_flight": 0}


# ---- progression across re-checks ---------------------------------------------------------------------
def test_a_message_the_provider_does_not_know_yet_is_checked_again_until_it_appears(aws, sqs_clock, wooxy_sandbox):
    # Given a sender that enqueues the id before Wooxy can answer for it
    stack = aws("wooxy")
    stack.enqueue({"ids": ["5d91537bd132fdf45916520f"]})
    assert stack.poll()[1] == set()
    item = stack.item("id", "5d91537bd132fdf45916520f")
    assert item["status"] == "not_found"
    assert json.loads(item["report"])["final"] is False
    assert stack.counts()["delayed"] == 1  # a re-check follows it
    # When the message appears at the provider and the re-check comes
    wooxy_sandbox.add_message("5d91537bd132fdf45916520f", steps=[(0, "queued")])
    sqs_clock.advance(31)
    assert stack.poll()[1] == set()
    # Then the answer moves on: not_found (not final) is below pending
    assert stack.item("id", "5d91537bd132fdf45916520f")["status"] == "pending"
    assert statuses(stack.events()) == [(None, "not_found"), ("not_found", "pending")]


def test_a_message_progresses_pending_sent_delivered_across_delayed_rechecks(aws, sqs_clock, openmarket_sandbox, capsys):
    stack = aws("openmarket")
    openmarket_sandbox.add_message("12004-0328K-1232U-18C21", steps=[(0, 2), (40, 3), (100, 4)])
    stack.enqueue({"ids": ["12004-0328K-1232U-18C21"], "context": {"order": 42}})

    assert stack.poll()[1] == set()
    assert statuses(stack.events()) == [(None, "pending")]
    # The re-check is on the queue with DelaySeconds=30: not receivable before, receivable after
    assert stack.counts() == {"visible": 0, "delayed": 1, "in_flight": 0}
    sqs_clock.advance(29)
    assert stack.receive() == []
    sqs_clock.advance(2)
    openmarket_sandbox.clock.advance(45)
    messages, failed = stack.poll()
    assert len(messages) == 1
    assert failed == set()
    assert json.loads(messages[0]["Body"])["attempt"] == 1
    assert statuses(stack.events()) == [("pending", "sent")]

    # The second re-check waits 60 s
    sqs_clock.advance(59)
    assert stack.receive() == []
    sqs_clock.advance(2)
    openmarket_sandbox.clock.advance(60)
    assert stack.poll()[1] == set()
    events = stack.events()
    assert statuses(events) == [("sent", "delivered")]
    assert events[0]["detail"]["context"] == {"order": 42}
    assert events[0]["detail"]["report"]["final"] is True
    # Final: no more re-checks
    sqs_clock.advance(3600)
    assert stack.counts() == {"visible": 0, "delayed": 0, "in_flight": 0}
    assert [h["status"] for h in stack.item("id", "12004-0328K-1232U-18C21")["history"]] == ["pending", "sent", "delivered"]
    # The delivery analytics: one final outcome and its time to final (its value is unit-tested: the queue's clock here
    # is simulated, the tracker's is not)
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    outcomes = [m for m in metrics if "FinalOutcomes" in m]
    assert [(m["provider"], m["status"], m["FinalOutcomes"]) for m in outcomes] == [("openmarket", "delivered", [1.0])]
    assert [m["provider"] for m in metrics if "TimeToFinal" in m] == ["openmarket"]
    assert sum(m["LookupIds"][0] for m in metrics if "LookupIds" in m) == 3  # the queue path counts its lookups too


# ---- out-of-order answers -------------------------------------------------------------------------------
def test_a_stale_lower_status_changes_nothing(aws, sqs_clock, wwt_sandbox):
    stack = aws("wwt")
    wwt_sandbox.add_message("300", steps=[(0, "sent")])
    stack.enqueue({"ids": ["300"]})
    assert stack.poll()[1] == set()
    assert statuses(stack.events()) == [(None, "sent")]
    # The provider now answers an older state ("accepted" = pending), e.g. a lagging replica
    wwt_sandbox.add_message("300", steps=[(0, "accepted")])
    sqs_clock.advance(31)
    requests_before = len(wwt_sandbox.requests)
    assert stack.poll()[1] == set()
    assert len(wwt_sandbox.requests) == requests_before + 1  # it was asked, and answered "pending"
    assert stack.events() == []
    item = stack.item("id", "300")
    assert item["status"] == "sent"
    assert [h["status"] for h in item["history"]] == ["sent"]


def test_a_final_status_is_never_asked_again_or_replaced(aws, wwt_sandbox):
    stack = aws("wwt")
    wwt_sandbox.add_message("301", steps=[(0, "delivered")], reference="ref301")
    stack.enqueue({"references": ["ref301"]})
    assert stack.poll()[1] == set()
    assert statuses(stack.events()) == [(None, "delivered")]
    wwt_sandbox.add_message("301", steps=[(0, "sent")], reference="ref301")  # a stale "sent" would come back
    requests_before = len(wwt_sandbox.requests)
    stack.enqueue({"references": ["ref301"]})
    assert stack.poll()[1] == set()
    assert len(wwt_sandbox.requests) == requests_before
    assert stack.events() == []
    assert stack.item("reference", "ref301")["status"] == "delivered"
    assert stack.item("id", "301") is None  # references are keyed apart from ids


# ---- the query window -----------------------------------------------------------------------------------
def test_openmarket_code_0_becomes_delivered_when_the_5_day_window_closes(aws, sqs_clock, openmarket_sandbox):
    stack = aws("openmarket")
    openmarket_sandbox.add_message("LANDLINE-1", steps=[(0, 0)])  # "sent", and no receipt will ever follow
    stack.enqueue({"ids": ["LANDLINE-1"], "context": {"k": "v"}})
    assert stack.poll()[1] == set()
    assert statuses(stack.events()) == [(None, "sent")]
    # Five days pass (moved in the table, where the window is measured from)
    stack.table.update_item(
        Key={"pk": "openmarket#id#LANDLINE-1"},
        UpdateExpression="SET tracked_since = :old",
        ExpressionAttributeValues={":old": iso(utcnow() - timedelta(days=5, minutes=1))},
    )
    sqs_clock.advance(31)
    requests_before = len(openmarket_sandbox.requests)
    assert stack.poll()[1] == set()
    assert len(openmarket_sandbox.requests) == requests_before  # settled without asking
    events = stack.events()
    assert statuses(events) == [("sent", "delivered")]
    assert events[0]["detail"]["report"]["final"] is True
    assert events[0]["detail"]["report"]["details"]["query_window_closed"] is True
    assert events[0]["detail"]["context"] == {"k": "v"}
    sqs_clock.advance(3600)
    assert stack.counts()["delayed"] + stack.counts()["visible"] == 0


def test_wooxy_open_message_becomes_unknown_final_after_query_window_hours(aws, sqs_clock, wooxy_sandbox):
    stack = aws("wooxy")
    wooxy_sandbox.clock.advance(-73 * 3600)  # created 73 hours ago, still "queued"
    wooxy_sandbox.add_message("5d91537bd132fdf45916520d", steps=[(0, "queued")])
    wooxy_sandbox.clock.advance(73 * 3600)
    stack.enqueue({"ids": ["5d91537bd132fdf45916520d"]})
    assert stack.poll()[1] == set()
    assert statuses(stack.events()) == [(None, "pending")]
    # The window (from Wooxy's createdAt) has passed: the re-check is due at once, and settles it
    sqs_clock.advance(2)
    assert stack.poll()[1] == set()
    events = stack.events()
    assert statuses(events) == [("pending", "unknown")]
    assert events[0]["detail"]["report"]["final"] is True
    assert events[0]["detail"]["report"]["provider_status"]["code"] == "queued"  # the raw value is kept


# ---- GET /tracked ----------------------------------------------------------------------------------------
def test_get_tracked_answers_the_stored_report_with_history_and_404_when_not_tracked(aws, sqs_clock, wwt_sandbox):
    stack = aws("wwt")
    wwt_sandbox.add_message("400", steps=[(0, "accepted"), (40, "delivered")], reference="ord400")
    stack.enqueue({"references": ["ord400"], "context": {"order": "400"}})
    stack.poll()
    sqs_clock.advance(31)
    wwt_sandbox.clock.advance(45)
    stack.poll()
    tracked = load_handler("tracked")

    status, body = call(tracked, reference_event("wwt", "ord400", kind="reference"))
    assert status == 200
    assert body["report"]["status"] == "delivered"
    assert [h["status"] for h in body["history"]] == ["pending", "delivered"]
    assert body["context"] == {"order": "400"}
    assert body["next_check_at"] is None

    status, body = call(tracked, reference_event("wwt", "ord400"))  # by WWT id: not tracked that way
    assert status == 404
    assert body["error"]["message"] == "this message is not tracked"
    status, body = call(tracked, reference_event("nope", "1"))
    assert status == 400
    assert body["error"]["code"] == "invalid_request"
    status, body = call(tracked, reference_event("wwt", "1" * 3000))  # DynamoDB would refuse a 3 KB key
    assert (status, body["error"]["code"]) == (400, "invalid_request")


def reference_event(provider: str, message_id: str, kind: str | None = None) -> dict:
    event = rest_event("GET", "/tracked/{provider}/{id}", {"provider": provider, "id": message_id})
    if kind is not None:
        event["queryStringParameters"] = {"kind": kind}
        event["multiValueQueryStringParameters"] = {"kind": [kind]}
    return event


# ---- a crash between the store write and the publish --------------------------------------------------------
def age_outbox(stack, pk: str) -> None:
    """The tracker's clock is real time here: age the outbox entry past the grace as SQS's clock moves."""
    stack.table.update_item(
        Key={"pk": pk},
        UpdateExpression="SET outbox_at = :old",
        ExpressionAttributeValues={":old": iso(utcnow() - OUTBOX_GRACE - timedelta(minutes=1))},
    )


@pytest.mark.parametrize("failure", ["refused", "raised"])
def test_an_event_not_published_goes_out_with_a_later_message(aws, sqs_clock, wooxy_sandbox, monkeypatch, failure):
    stack = aws("wooxy")
    wooxy_sandbox.add_message("5d91537bd132fdf45916520b", steps=[(0, "delivered")])
    stack.enqueue({"ids": ["5d91537bd132fdf45916520b"]})
    # EventBridge refuses the entry, or the call itself fails (throttled past the SDK's retries, a 5xx, the network)
    fail_put_events_once(monkeypatch, failure)
    assert stack.poll()[1] == set()  # processed: not left to a redelivery that a duplicate's delete may prevent
    assert stack.events() == []
    assert len(stack.item("id", "5d91537bd132fdf45916520b")["outbox"]) == 1
    assert stack.counts(stack.recheck_url)["delayed"] == 1  # the id is final: this message only publishes
    # When the outbox grace has passed, the message comes back and publishes the event, asking nothing
    age_outbox(stack, "wooxy#id#5d91537bd132fdf45916520b")
    sqs_clock.advance(OUTBOX_GRACE.total_seconds() + 2)
    requests_before = len(wooxy_sandbox.requests)
    assert stack.poll()[1] == set()
    assert len(wooxy_sandbox.requests) == requests_before  # already final: not asked again
    assert statuses(stack.events()) == [(None, "delivered")]  # published once, late
    assert stack.item("id", "5d91537bd132fdf45916520b").get("outbox", []) == []
    assert stack.counts() == {"visible": 0, "delayed": 0, "in_flight": 0}


def fail_put_events_once(monkeypatch, failure: str) -> None:
    """The first PutEvents call fails: EventBridge refuses every entry, or the call raises."""
    from botocore.exceptions import ClientError

    from sms_status.publish import EventPublisher

    real = EventPublisher.publish
    calls = []

    def put_events(self, details):
        calls.append(len(details))
        if len(calls) > 1:
            return real(self, details)
        client = self.client

        class Failing:
            def put_events(self, Entries):
                if failure == "raised":
                    raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutEvents")
                return {"FailedEntryCount": len(Entries), "Entries": [{"ErrorCode": "InternalFailure"} for _ in Entries]}

        self.client = Failing()
        try:
            return real(self, details)
        finally:
            self.client = client

    monkeypatch.setattr(EventPublisher, "publish", put_events)


def test_stale_outbox_events_are_published_before_any_provider_call_even_in_an_outage(aws, sqs_clock, wooxy_sandbox, monkeypatch):
    stack = aws("wooxy")
    wooxy_sandbox.add_message("5d91537bd132fdf45916520c", steps=[(0, "sent")])
    fail_put_events_once(monkeypatch, "refused")
    stack.enqueue({"ids": ["5d91537bd132fdf45916520c"]})
    assert stack.poll()[1] == set()  # stored with its event in the outbox, not published
    assert stack.events() == []
    # When the next messages come during a Wooxy outage
    wooxy_sandbox.inject(Fault.UNAVAILABLE, times=None)
    age_outbox(stack, "wooxy#id#5d91537bd132fdf45916520c")
    sqs_clock.advance(OUTBOX_GRACE.total_seconds() + 2)
    assert stack.poll()[1] == set()
    # Then the left-behind event is out anyway, and the id is still followed
    assert statuses(stack.events()) == [(None, "sent")]
    assert stack.item("id", "5d91537bd132fdf45916520c").get("outbox", []) == []
    assert stack.counts()["delayed"] >= 1


def test_an_unexpected_failure_of_a_record_is_logged_with_its_type_only(aws, wooxy_sandbox, monkeypatch, caplog):
    stack = aws("wooxy")
    from sms_status.store import StatusStore

    def broken(self, keys):
        raise RuntimeError("boom 5d91537bd132fdf45916520d")

    monkeypatch.setattr(StatusStore, "get_many", broken)
    sent = stack.enqueue({"ids": ["5d91537bd132fdf45916520d"], "context": {"phone": "+15550001111"}})
    assert stack.poll()[1] == {sent}
    (line,) = [r for r in caplog.records if r.getMessage() == "tracking batch failed unexpectedly"]
    assert (line.levelname, line.error_type, line.records) == ("ERROR", "RuntimeError", 1)
    logged = caplog.text
    assert "+15550001111" not in logged


def test_no_recheck_is_sent_before_its_claim_is_written(aws, sqs_clock, wooxy_sandbox, monkeypatch):
    """If the table write keeps failing, every receive must not start another chain (messages would multiply)."""
    stack = aws("wooxy")
    wooxy_sandbox.add_message("5d91537bd132fdf45916520a", steps=[(0, "queued")])
    from sms_status.store import StatusStore, StoreConflict

    def refused(self, key, change, read=None):
        raise StoreConflict("the status table refused the write (throttled)")

    monkeypatch.setattr(StatusStore, "update", refused)
    sent = stack.enqueue({"ids": ["5d91537bd132fdf45916520a"]})
    for _ in range(MAX_RECEIVES):
        assert stack.poll()[1] == {sent}  # failed: SQS delivers it again
        assert stack.counts(stack.recheck_url) == {"visible": 0, "delayed": 0, "in_flight": 0}  # and nothing was sent
        sqs_clock.advance(VISIBILITY + 1)


# ---- a batch is checked as one --------------------------------------------------------------------------
def test_single_id_messages_of_one_batch_are_looked_up_together_and_rechecked_in_one_message(aws, sqs_clock, wooxy_sandbox):
    stack = aws("wooxy")
    keys = [f"{n:024x}" for n in range(150)]
    for key in keys:
        wooxy_sandbox.add_message(key, steps=[(0, "queued")])
    sent = [stack.enqueue({"ids": [key], "context": {"sms": key}}) for key in keys]
    # When one invocation gets all 150 single-id records (several receives, as the event source gathers a batch)
    messages = []
    while len(messages) < len(sent) and (more := stack.receive()):
        messages += more
    assert stack.invoke(messages) == {"batchItemFailures": []}
    for message in messages:
        stack.sqs.delete_message(QueueUrl=message["QueueUrl"], ReceiptHandle=message["ReceiptHandle"])
    # Then Wooxy was asked twice (100 + 50 ids), one request at a time (the queue path's share of Wooxy's 10 is one
    # request per invocation), and two re-check messages carry every id with its own chain
    assert [len(json.loads(r.body)["ids"]) for r in wooxy_sandbox.requests] == [100, 50]
    assert wooxy_sandbox.max_in_flight == 1
    rechecks = [json.loads(m["Body"]) for m in stack.receive_delayed()]
    assert sorted(len(body["ids"]) for body in rechecks) == [50, 100]
    carried = {key: chain for body in rechecks for key, chain in zip(body["ids"], body["chains"], strict=True)}
    assert carried == {key: stack.item("id", key)["chain"] for key in keys}
    assert len(set(carried.values())) == len(keys)  # one chain per sender message
    # and each sender's context reached its own event
    assert sorted(e["detail"]["context"]["sms"] for e in stack.events()) == sorted(keys)
    # When the re-checks come due, both are checked in one batch: 150 ids in two requests again
    sqs_clock.advance(31)
    wooxy_sandbox.requests.clear()
    assert stack.poll()[1] == set()
    assert [len(json.loads(r.body)["ids"]) for r in wooxy_sandbox.requests] == [100, 50]


def test_an_id_with_no_answer_yet_is_followed_by_one_chain_whatever_the_duplicates(aws, sqs_clock, wwt_sandbox):
    """The provider is down from the first check; a sender's duplicate and a redelivered re-check must not fork."""
    stack = aws("wwt")
    wwt_sandbox.add_message("212", steps=[(0, "delivered")])
    wwt_sandbox.inject(Fault.UNAVAILABLE, times=None)
    stack.enqueue({"ids": ["212"], "context": {"order": "C-3"}})
    assert stack.poll()[1] == set()
    item = stack.item("id", "212")
    assert "report" not in item
    assert json.loads(item["context"]) == {"order": "C-3"}
    # The sender enqueues it again, and the re-check is delivered twice when it comes due
    stack.enqueue({"ids": ["212"]})
    assert stack.poll()[1] == set()  # claimed by the first message's chain: nothing sent
    assert stack.counts()["delayed"] == 1
    sqs_clock.advance(31)
    messages, failed = stack.poll()
    assert (len(messages), failed) == (1, set())
    assert stack.invoke(messages) == {"batchItemFailures": []}  # the same record again (a redelivery)
    # Then the two copies of that one chain converge at the next check: one chain follows the id
    sqs_clock.advance(61)
    assert stack.poll()[1] == set()
    assert stack.counts()["delayed"] == 1
    wwt_sandbox.clear_faults()
    sqs_clock.advance(121)
    assert stack.poll()[1] == set()
    assert stack.item("id", "212")["status"] == "delivered"
    assert [(e["detail"]["previous_status"], e["detail"]["context"]) for e in stack.events()] == [(None, {"order": "C-3"})]
    assert stack.counts() == {"visible": 0, "delayed": 0, "in_flight": 0}


def test_a_huge_provider_string_is_stored_cut_and_marked(aws, wooxy_sandbox):
    stack = aws("wooxy")
    wooxy_sandbox.add_message("5d91537bd132fdf45916520a", steps=[(0, "x" * 250_000)])  # an unknown 250 KB status
    stack.enqueue({"ids": ["5d91537bd132fdf45916520a"]})
    assert stack.poll()[1] == set()
    item = stack.item("id", "5d91537bd132fdf45916520a")
    report = json.loads(item["report"])
    assert (report["status"], len(report["provider_status"]["code"])) == ("unknown", MAX_CODE_CHARS)
    assert report["provider_status"]["code"].endswith("…")
    assert report["details"]["truncated"] == ["provider_status.code"]
    assert len(json.dumps(item, default=str)) < 10_000
    (event,) = stack.events()
    assert event["detail"]["report"] == report


# ---- stalled AWS calls ------------------------------------------------------------------------------------
@pytest.fixture
def stalled_endpoint(monkeypatch, wooxy_sandbox):
    """A server on 127.0.0.1 that accepts connections and never answers, and AWS clients with short bounds."""
    from local.sandboxes.wooxy import WooxySandbox
    from sms_status import aws as aws_module

    monkeypatch.setattr(aws_module, "CONNECT_TIMEOUT", 0.5)
    monkeypatch.setattr(aws_module, "READ_TIMEOUT", 0.5)
    aws_module._config.cache_clear()
    server = WooxySandbox(hang=30).start()
    server.inject(Fault.TIMEOUT, times=None)

    def client(service: str):
        return boto3.client(service, endpoint_url=server.base_url, config=aws_module._config())

    yield client
    server.stop()
    aws_module._config.cache_clear()


@pytest.mark.parametrize("service", ["dynamodb", "events", "sqs"])
def test_a_stalled_aws_call_ends_the_batch_in_time_and_loses_nothing(aws, sqs_clock, wooxy_sandbox, stalled_endpoint, service):
    from sms_status.tracking import chain_of

    stack = aws("wooxy")
    wooxy_sandbox.add_message("5d91537bd132fdf45916520a", steps=[(0, "queued")])
    sent = stack.enqueue({"ids": ["5d91537bd132fdf45916520a"]})
    tracker = stack.handler.tracker()
    stalled = stalled_endpoint(service)
    adapter = {"dynamodb": tracker.store, "events": tracker.publisher, "sqs": tracker.queue}[service]
    adapter.client = stalled
    started = time.monotonic()
    _, failed = stack.poll()
    # Every call gave up after its bounded attempts (3 x 0.5 s here): far within the function's timeout
    assert time.monotonic() - started < 25
    if service == "events":
        # The change stays in the item's outbox and a later message comes back to publish it: nothing failed
        assert failed == set()
        assert len(stack.item("id", "5d91537bd132fdf45916520a")["outbox"]) == 1
        assert stack.counts(stack.recheck_url)["delayed"] == 2  # the next check, and the publish-later message
    elif service == "sqs":
        # The claim is written, the re-check could not be sent: the record fails and SQS delivers it again,
        # when it recognises its own claim and sends the re-check
        assert failed == {sent}
        assert stack.item("id", "5d91537bd132fdf45916520a")["chain"] == chain_of(sent)
    else:
        assert failed == {sent}
        assert stack.item("id", "5d91537bd132fdf45916520a") is None
    adapter.client = {"dynamodb": boto3.client("dynamodb"), "events": boto3.client("events"), "sqs": boto3.client("sqs")}[service]
    if failed:
        sqs_clock.advance(VISIBILITY + 1)
        assert stack.poll()[1] == set()
    assert stack.item("id", "5d91537bd132fdf45916520a")["status"] == "pending"
    assert stack.counts(stack.recheck_url)["delayed"] >= 1


def test_an_open_ids_published_event_is_cleared_by_its_next_check_not_by_a_write_of_its_own(aws, sqs_clock, wooxy_sandbox):
    stack = aws("wooxy")
    wooxy_sandbox.add_message("5d91537bd132fdf45916520a", steps=[(0, "queued"), (20, "delivered")])
    stack.enqueue({"ids": ["5d91537bd132fdf45916520a"]})
    assert stack.poll()[1] == set()
    # The first check wrote the item once: its "pending" event is published and still in the outbox ...
    item = stack.item("id", "5d91537bd132fdf45916520a")
    assert (int(item["version"]), [json.loads(e)["event_id"] for e in item["outbox"]]) == (1, ["wooxy#id#5d91537bd132fdf45916520a#1"])
    assert statuses(stack.events()) == [(None, "pending")]
    # ... and the re-check says it was published
    (recheck,) = stack.receive_delayed()
    assert json.loads(recheck["Body"])["published"] == ["wooxy#id#5d91537bd132fdf45916520a#1"]
    # The next check's write drops it; the final event is cleared at once (no check follows a final id)
    sqs_clock.advance(31)
    wooxy_sandbox.clock.advance(30)
    assert stack.poll()[1] == set()
    item = stack.item("id", "5d91537bd132fdf45916520a")
    assert (item["status"], item.get("outbox", []), int(item["version"])) == ("delivered", [], 3)
    assert statuses(stack.events()) == [("pending", "delivered")]  # nothing published twice

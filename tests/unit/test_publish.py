"""EventPublisher: what is not published is reported by event id, never raised (the events stay in their outboxes)."""

from __future__ import annotations

import json
import threading

from botocore.exceptions import ClientError, EndpointConnectionError

from sms_status.publish import DETAIL_TYPE, MAX_ENTRIES, SOURCE, EventPublisher


def detail(n: int) -> dict:
    return {"report": {"id": str(n)}, "previous_status": None, "context": None, "event_id": f"wooxy#id#{n}#1"}


class FakeEventBridge:
    """Answers PutEvents as EventBridge does; `refuse` event ids get an ErrorCode, `raise_for` calls raise."""

    def __init__(self, refuse: set[str] = frozenset(), raise_for: set[str] = frozenset(), error: Exception | None = None) -> None:
        self.refuse, self.raise_for, self.error = refuse, raise_for, error
        self.calls: list[list[dict]] = []
        self.lock = threading.Lock()

    def put_events(self, Entries):
        with self.lock:
            self.calls.append(Entries)
        ids = [json.loads(entry["Detail"])["event_id"] for entry in Entries]
        if self.raise_for & set(ids):
            raise self.error
        results = [{"ErrorCode": "InternalFailure", "ErrorMessage": "no"} if i in self.refuse else {"EventId": f"e-{i}"} for i in ids]
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def test_every_entry_is_sent_ten_a_call_on_the_bus_and_none_is_left() -> None:
    bus = FakeEventBridge()
    assert EventPublisher(bus, "the-bus").publish([detail(n) for n in range(25)]) == set()
    assert sorted(len(call) for call in bus.calls) == [5, 10, 10]
    sent = [entry for call in bus.calls for entry in call]
    assert {(e["Source"], e["DetailType"], e["EventBusName"]) for e in sent} == {(SOURCE, DETAIL_TYPE, "the-bus")}
    assert sorted(json.loads(e["Detail"])["event_id"] for e in sent) == sorted(detail(n)["event_id"] for n in range(25))
    assert MAX_ENTRIES == 10  # PutEvents' documented limit


def test_a_refused_entry_is_the_only_one_left_unpublished() -> None:
    bus = FakeEventBridge(refuse={"wooxy#id#3#1", "wooxy#id#17#1"})
    assert EventPublisher(bus, "b").publish([detail(n) for n in range(20)]) == {"wooxy#id#3#1", "wooxy#id#17#1"}
    assert len(bus.calls) == 2  # the other call went out all the same


def test_a_call_that_raises_leaves_its_own_entries_unpublished_and_never_raises() -> None:
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutEvents")
    for error in (throttled, EndpointConnectionError(endpoint_url="https://events.us-east-1.amazonaws.com")):
        bus = FakeEventBridge(raise_for={"wooxy#id#12#1"}, error=error)
        assert EventPublisher(bus, "b").publish([detail(n) for n in range(30)]) == {detail(n)["event_id"] for n in range(10, 20)}


def test_an_answer_missing_entries_counts_them_as_unpublished() -> None:
    class Short(FakeEventBridge):
        def put_events(self, Entries):
            return {"FailedEntryCount": 0, "Entries": [{"EventId": "only-one"}]}

    assert EventPublisher(Short(), "b").publish([detail(1), detail(2)]) == {"wooxy#id#2#1"}

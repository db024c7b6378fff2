"""Change events on EventBridge: one PutEvents entry per status change of a tracked message.

    source: "sms-status"    detail-type: "SMS Status Changed"
    detail: {"report": {...}, "previous_status": "pending" | ... | null, "context": {...} | null,
             "event_id": "<provider>#<kind>#<id>#<version>"}

`event_id` is stable for one change: in the rare case of a crash between publishing and recording that the
event was published, the event is published again with the same `event_id`, so consumers can drop it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .model import Report, Status, to_json

SOURCE = "sms-status"
DETAIL_TYPE = "SMS Status Changed"
MAX_ENTRIES = 10  # PutEvents takes at most 10 entries per call
PARALLEL_CALLS = 5  # PutEvents calls in flight from one invocation (far below the bus's thousands a second)


def change_detail(report: Report, previous_status: Status | None, context: dict[str, Any] | None, event_id: str) -> dict[str, Any]:
    return {
        "report": report.to_dict(),
        "previous_status": str(previous_status) if previous_status is not None else None,
        "context": context,
        "event_id": event_id,
    }


def entry(detail: dict[str, Any], bus_name: str) -> dict[str, Any]:
    return {"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": to_json(detail), "EventBusName": bus_name}


class EventPublisher:
    def __init__(self, client: Any, bus_name: str) -> None:
        self.client = client
        self.bus_name = bus_name

    @classmethod
    def from_name(cls, bus_name: str) -> EventPublisher:
        from .aws import client

        return cls(client("events"), bus_name)

    def publish(self, details: Sequence[dict[str, Any]]) -> set[str]:
        """PutEvents, 10 entries a call, up to PARALLEL_CALLS calls at once (a batch of 100 changes is one round
        trip, not ten). Returns the `event_id`s that were NOT published: the entries EventBridge refused, and every
        entry of a call that raised (throttled past the SDK's retries, a 5xx, the network). Never raises for
        EventBridge's sake: what was not published stays in its item's outbox."""
        chunks = [details[start : start + MAX_ENTRIES] for start in range(0, len(details), MAX_ENTRIES)]
        if len(chunks) <= 1:
            return set().union(*map(self._put, chunks))
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(PARALLEL_CALLS, len(chunks))) as pool:
            return set().union(*pool.map(self._put, chunks))

    def _put(self, chunk: Sequence[dict[str, Any]]) -> set[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.put_events(Entries=[entry(detail, self.bus_name) for detail in chunk])
        except (BotoCoreError, ClientError):
            return {detail["event_id"] for detail in chunk}
        results = answer.get("Entries") or []
        unpublished = set()
        for position, detail in enumerate(chunk):
            result = results[position] if position < len(results) else {"ErrorCode": "missing"}
            if result.get("ErrorCode") or not result.get("EventId"):
                unpublished.add(detail["event_id"])
        return unpublished

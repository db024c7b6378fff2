"""The status table (DynamoDB): one item per tracked message, and the rule that statuses never go backwards.

Item layout (all strings unless noted; `report` and `context` are JSON text so prices and sender data keep
their exact values without DynamoDB's Decimal conversion):
- `pk` = "<provider>#<kind>#<id>": kind is "id", or "reference" for WWT external references, so a WWT
  reference and a WWT id with the same characters are two different items.
- `version` (N): bumped by every write; every write is conditional on the version it read (optimistic lock).
- `status`, `final` (BOOL), `report` (the latest stored report), `history` (L of {status, code, at}). An item
  without them is a message being followed that has no usable answer yet (the provider was down at its first
  checks): it exists so that exactly one re-check chain follows it.
- `context`: the sender's context (from the first message that tracked the id), `tracked_since`.
- `chain`, `next_check_at`: which re-check message currently follows the id, and when it is due.
- `outbox` (L of JSON change events) + `outbox_at` (when the oldest of them was written): events written with the
  change, removed once published.
- `expires_at` (N, epoch seconds): the TTL attribute.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from .lookup import Kind
from .model import Provider, ProviderStatus, Report, Status, iso, parse_iso, to_json

MAX_HISTORY = 50  # entries kept per item (oldest dropped): bounds the item far below DynamoDB's 400 KB
RETENTION = timedelta(days=30)  # how long an item outlives its query window (the TTL)
WRITE_ATTEMPTS = 5  # optimistic-lock retries before giving up (the SQS record is then retried)
UNREAD = object()  # `StatusStore.update`: the caller has not read the item
BATCH_GET_KEYS = 100  # BatchGetItem's limit per call
# What a stored report keeps of the provider's own strings. A provider may send anything (a 250 KB description
# was seen in tests): the report is stored twice (the item and its outbox event) and DynamoDB refuses items over
# 400 KB, so longer strings are cut to these lengths and the report says so (`details.truncated`).
MAX_CODE_CHARS = 100
MAX_DESCRIPTION_CHARS = 1000
MAX_DETAILS_BYTES = 8000  # `details` beyond this (a provider's unparsed text) is replaced by a note
CUT_MARK = "…"


class StoreConflict(Exception):
    """Another writer kept winning the conditional write; the record fails and SQS retries it."""


@dataclass(frozen=True, slots=True)
class TrackKey:
    provider: Provider
    kind: Kind
    id: str

    @property
    def pk(self) -> str:
        return f"{self.provider}#{self.kind}#{self.id}"


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    status: str
    code: str
    at: str  # ISO 8601 UTC: when the provider answered this (or when the window closed)

    def to_dict(self) -> dict[str, str]:
        return {"status": self.status, "code": self.code, "at": self.at}


@dataclass(frozen=True, slots=True)
class Tracked:
    key: TrackKey
    report: Report | None  # None: followed, but the provider has not answered usably yet
    tracked_since: datetime
    history: tuple[HistoryEntry, ...] = ()
    context: dict[str, Any] | None = None
    chain: str | None = None
    next_check_at: datetime | None = None
    outbox: tuple[dict[str, Any], ...] = ()
    outbox_at: datetime | None = None
    version: int = 0
    expires_at: int | None = None

    @property
    def final(self) -> bool:
        return self.report is not None and self.report.final

    def to_public(self) -> dict[str, Any]:
        """What GET /tracked/{provider}/{id} answers (for an item with a report)."""
        return {
            "report": self.report.to_dict() if self.report else None,
            "history": [entry.to_dict() for entry in self.history],
            "context": self.context,
            "tracked_since": iso(self.tracked_since),
            "next_check_at": None if self.final else iso(self.next_check_at),
        }


# ---- the pure rules: what a stored report may hold, and may this report replace the stored one? ----------
def _cut(text: str | None, limit: int) -> tuple[str | None, bool]:
    if text is None or len(text) <= limit:
        return text, False
    return text[: limit - len(CUT_MARK)] + CUT_MARK, True


def bounded(report: Report) -> Report:
    """The report as it is stored and published: the provider's code and description cut to their documented
    lengths, oversized details replaced, and `details.truncated` naming what was cut."""
    code, code_cut = _cut(report.provider_status.code, MAX_CODE_CHARS)
    description, description_cut = _cut(report.provider_status.description, MAX_DESCRIPTION_CHARS)
    details = report.details
    details_cut = details is not None and len(to_json(details, compact=True).encode()) > MAX_DETAILS_BYTES
    cut = [name for name, was_cut in (("provider_status.code", code_cut), ("provider_status.description", description_cut)) if was_cut]
    if details_cut:
        cut.append("details")
        details = {}
    if not cut:
        return report
    return replace(report, provider_status=ProviderStatus(code or "", description), details={**(details or {}), "truncated": cut})


def rank(report: Report) -> int:
    """pending (or a not-yet-found message) < sent (with the carrier, or an open `unknown`) < final."""
    if report.final:
        return 2
    return 0 if report.status in (Status.PENDING, Status.NOT_FOUND) else 1


@dataclass(frozen=True, slots=True)
class Applied:
    item: Tracked
    changed: bool  # the normalized status changed (an event is due)
    previous_status: Status | None


def apply_report(
    current: Tracked | None, report: Report, *, key: TrackKey, tracked_since: datetime, at: datetime | None = None
) -> Applied | None:
    """The item after `report`, or None when the report must not be stored.

    - A final stored report is never replaced (the first final answer wins).
    - A lower rank never replaces a higher one (no "sent" after "delivered", no "pending" after "sent").
    - Within one rank, a report checked before the stored one is stale (a late duplicate): ignored.
    A history entry is added when the status or the provider code changes; `changed` only for the status.
    The report is stored `bounded`.
    """
    report = bounded(report)
    entry = HistoryEntry(str(report.status), report.provider_status.code, iso(at or report.checked_at) or "")
    if current is None or current.report is None:  # the first answer (an answerless item keeps its chain, context ...)
        item = replace(current, report=report, history=(entry,)) if current else Tracked(key, report, tracked_since, (entry,))
        return Applied(item, changed=True, previous_status=None)
    stored = current.report
    if stored.final:
        return None
    if not report.final and (rank(report) < rank(stored) or (rank(report) == rank(stored) and report.checked_at < stored.checked_at)):
        return None
    history = current.history
    if not history or (history[-1].status, history[-1].code) != (entry.status, entry.code):
        history = (*history, entry)[-MAX_HISTORY:]
    item = replace(current, report=report, history=history)
    return Applied(item, changed=report.status is not stored.status, previous_status=stored.status)


# ---- the DynamoDB adapter --------------------------------------------------------------------------
# Not mutated by `make mutate` (pragmas below): its tests run against moto (tests/integration/test_tracking_store.py),
# too slow to repeat for every mutant.
def _to_item(tracked: Tracked, version: int) -> dict[str, Any]:  # pragma: no mutate block
    item: dict[str, Any] = {
        "pk": tracked.key.pk,
        "provider": str(tracked.key.provider),
        "kind": tracked.key.kind,
        "id": tracked.key.id,
        "version": version,
        "history": [entry.to_dict() for entry in tracked.history],
        "tracked_since": iso(tracked.tracked_since),
        "outbox": [to_json(event, compact=True) for event in tracked.outbox],
    }
    if tracked.report is not None:
        item.update(status=str(tracked.report.status), final=tracked.report.final, report=to_json(tracked.report.to_dict(), compact=True))
    optional = {
        "context": to_json(tracked.context, compact=True) if tracked.context is not None else None,
        "chain": tracked.chain,
        "next_check_at": iso(tracked.next_check_at),
        "outbox_at": iso(tracked.outbox_at),
        "expires_at": tracked.expires_at,
    }
    item.update({name: value for name, value in optional.items() if value is not None})
    return item


def _from_item(item: dict[str, Any]) -> Tracked:  # pragma: no mutate block
    key = TrackKey(Provider(item["provider"]), item["kind"], item["id"])
    return Tracked(
        key=key,
        report=Report.from_dict(json.loads(item["report"])) if "report" in item else None,
        tracked_since=parse_iso(item["tracked_since"]),  # type: ignore[arg-type]
        history=tuple(HistoryEntry(h["status"], h["code"], h["at"]) for h in item.get("history", [])),
        context=json.loads(item["context"]) if "context" in item else None,
        chain=item.get("chain"),
        next_check_at=parse_iso(item.get("next_check_at")),
        outbox=tuple(json.loads(event) for event in item.get("outbox", [])),
        outbox_at=parse_iso(item.get("outbox_at")),
        version=int(item["version"]),
        expires_at=int(item["expires_at"]) if "expires_at" in item else None,
    )


class StatusStore:  # pragma: no mutate block
    """Reads and conditional writes of tracked messages through a low-level DynamoDB client (thread-safe, unlike a
    boto3 resource: the queue path writes a batch's items from several threads)."""

    def __init__(self, client: Any, table_name: str) -> None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self.client = client
        self.table_name = table_name
        self._serialize = TypeSerializer().serialize
        self._deserialize = TypeDeserializer().deserialize

    @classmethod
    def from_name(cls, table_name: str) -> StatusStore:
        from .aws import client

        return cls(client("dynamodb"), table_name)

    def _encode(self, item: dict[str, Any]) -> dict[str, Any]:
        return {name: self._serialize(value) for name, value in item.items()}

    def decode(self, item: dict[str, Any]) -> Tracked:
        """A tracked message from an item as the low-level client answers it."""
        return _from_item({name: self._deserialize(value) for name, value in item.items()})

    def get(self, key: TrackKey) -> Tracked | None:
        item = self.client.get_item(TableName=self.table_name, Key={"pk": {"S": key.pk}}, ConsistentRead=True).get("Item")
        return self.decode(item) if item else None

    def get_many(self, keys: Iterable[TrackKey]) -> dict[TrackKey, Tracked]:
        """Consistent reads of any number of keys: BatchGetItem 100 at a time, unprocessed keys asked again with a
        short backoff. Raises StoreConflict when the table keeps some keys unanswered (throttled)."""
        by_pk = {key.pk: key for key in keys}
        found: dict[TrackKey, Tracked] = {}
        pks = list(by_pk)
        for start in range(0, len(pks), BATCH_GET_KEYS):
            pending = [{"pk": {"S": pk}} for pk in pks[start : start + BATCH_GET_KEYS]]
            for attempt in range(WRITE_ATTEMPTS):
                if not pending:
                    break
                if attempt:
                    time.sleep(0.05 * 2**attempt)
                answer = self.client.batch_get_item(RequestItems={self.table_name: {"Keys": pending, "ConsistentRead": True}})
                for raw in answer.get("Responses", {}).get(self.table_name, []):
                    tracked = self.decode(raw)
                    found[by_pk[tracked.key.pk]] = tracked
                pending = answer.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
            if pending:
                raise StoreConflict("the status table did not answer every key (throttled)")
        return found

    def update(
        self, key: TrackKey, change: Callable[[Tracked | None], Tracked | None], read: Tracked | object | None = UNREAD
    ) -> Tracked | None:
        """Change, write if nobody wrote in between; on a conflict read the item again and repeat.

        `change` gets the current item (or None) and returns the new item, or None for "nothing to write".
        `read`: the item as the caller already read it (None: absent), so the first attempt needs no read.
        Returns what was written (with its new version), or None when nothing was.
        """
        from botocore.exceptions import ClientError

        for attempt in range(WRITE_ATTEMPTS):
            current = self.get(key) if attempt or read is UNREAD else read
            wanted = change(current)  # type: ignore[arg-type]
            if wanted is None:
                return None
            version = (current.version if current else 0) + 1  # type: ignore[union-attr]
            condition = "attribute_not_exists(pk)" if current is None else "version = :expected"
            values = {} if current is None else {"ExpressionAttributeValues": {":expected": {"N": str(current.version)}}}  # type: ignore[union-attr]
            try:
                self.client.put_item(
                    TableName=self.table_name, Item=self._encode(_to_item(wanted, version)), ConditionExpression=condition, **values
                )
            except ClientError as error:
                if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    continue  # someone else wrote first: decide again on what they wrote
                raise
            return replace(wanted, version=version)
        raise StoreConflict(f"{key.provider} item kept changing under {WRITE_ATTEMPTS} attempts")

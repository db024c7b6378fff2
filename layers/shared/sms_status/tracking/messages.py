"""Tracking messages: what a sender puts on a provider's tracking queue, and what the service puts on its own
re-check queue (docs/queue.md "Message schema").

A sender's message: `{"ids": [...]}` (WWT also `{"references": [...]}`), 1-100 ids, and an optional `"context"`
object; nothing else. A re-check message, which only the function writes (senders are never granted its queue):
the same plus `attempt` (checks made so far), `chains` (one per id: the re-check chain that follows it),
`since` (when tracking started), `not_before` (a wait longer than SQS can delay) and `published` (the change events
the previous check published, which this check removes from the items' outboxes in the write it makes anyway). One re-check message carries
the open ids of many sender messages. Messages written before `chains` existed carry one `chain` for all their
ids; they are still read.

Every message is validated completely (the one id validator, then the provider's own rules) before anything is
looked up; a malformed one raises MalformedMessage, whose text says why without repeating the content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import InvalidRequest
from ..lookup import KEY_FIELDS, Kind, StatusService, as_key
from ..model import iso, parse_iso, to_json
from ..validation import check_keys, parse_json

MAX_IDS = 100
MAX_CONTEXT_BYTES = 4096  # serialized; the context is stored with the message and travels in every event
MAX_CHAIN_CHARS = 64
MAX_ATTEMPT = 100_000
MAX_EVENT_ID_CHARS = 300  # "<provider>#<kind>#<id>#<version>": an id is at most 128 characters
INTERNAL_FIELDS = frozenset({"attempt", "chain", "chains", "since", "not_before", "published"})
SENDER_FIELDS = frozenset({*KEY_FIELDS, "context"})
RECHECK_FIELDS = SENDER_FIELDS | INTERNAL_FIELDS


class MalformedMessage(Exception):
    """A record that can never succeed. The message says why, without any of the record's content."""


@dataclass(frozen=True, slots=True)
class TrackRequest:
    """One tracking message: a sender's (ids, context) or one of our re-checks (plus the internal fields)."""

    kind: Kind
    ids: tuple[str, ...]
    context: dict[str, Any] | None = None
    attempt: int = 0  # how many checks came before this one (0: the sender's own message)
    chains: tuple[str | None, ...] | None = None  # re-checks: the chain that follows each id (None: a sender's)
    since: datetime | None = None  # when tracking started (carried so the window survives a missing item)
    not_before: datetime | None = None  # a chained wait: do nothing before this time
    published: tuple[str, ...] = ()  # event ids the previous check published: cleared from the outboxes by this one

    def chain_of(self, position: int) -> str | None:
        return self.chains[position] if self.chains is not None else None

    def to_body(self) -> dict[str, Any]:
        field = next(name for name, kind in KEY_FIELDS.items() if kind == self.kind)
        body: dict[str, Any] = {field: list(self.ids), "attempt": self.attempt}
        optional = {
            "context": self.context,
            "chains": list(self.chains) if self.chains is not None else None,
            "since": iso(self.since),
            "not_before": iso(self.not_before),
            "published": list(self.published) if self.published else None,
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        return body


def _time_field(body: dict[str, Any], name: str) -> datetime | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        parsed = parse_iso(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise MalformedMessage(f"{name} must be an ISO 8601 UTC time")
    return parsed


def _is_chain(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= MAX_CHAIN_CHARS


def _chains(body: dict[str, Any], count: int) -> tuple[str | None, ...] | None:
    if "chain" in body and "chains" in body:
        raise MalformedMessage("a re-check carries chain or chains, not both")
    if "chain" in body:  # a message written before one re-check carried many records' ids: one chain for all
        if not _is_chain(body["chain"]):
            raise MalformedMessage("chain must be a short string")
        return (body["chain"],) * count
    chains = body.get("chains")
    if chains is None:
        return None
    if not isinstance(chains, list) or len(chains) != count or not all(_is_chain(chain) for chain in chains):
        raise MalformedMessage("chains must be a list of short strings, one per id")
    return tuple(chains)


def parse_message(raw: str, service: StatusService, *, internal: bool = False) -> TrackRequest:
    """Validate one record body completely, before anything is looked up. Only our own re-check messages
    (`internal`: from the re-check queue) may carry attempt, chain(s), since and not_before."""
    try:
        body = parse_json(raw, '{"ids": [...]}')
    except InvalidRequest as error:
        raise MalformedMessage(error.message) from None
    if not isinstance(body, dict):
        raise MalformedMessage('the body must be a JSON object like {"ids": [...]}')
    unknown = sorted(set(body) - (RECHECK_FIELDS if internal else SENDER_FIELDS))
    if unknown:
        internal_only = " (internal to the service's own re-checks)" if not internal and set(unknown) <= INTERNAL_FIELDS else ""
        raise MalformedMessage(f"unknown field(s): {', '.join(unknown[:5])}{internal_only}")
    present = [name for name in KEY_FIELDS if name in body]
    if len(present) != 1:
        raise MalformedMessage('the body must hold exactly one of "ids" or "references"')
    field = present[0]
    kind = KEY_FIELDS[field]
    if kind not in service.kinds:
        raise MalformedMessage(f"{service.provider} messages cannot be tracked by {field}")
    try:  # the API's id rules and messages (validation.py), then the provider's own
        ids = check_keys(body[field], field, MAX_IDS, lambda key: as_key(key, service.provider, kind))
    except InvalidRequest as error:
        raise MalformedMessage(error.message) from None
    for position, key in enumerate(ids):
        try:
            service.validate(key, kind)
        except InvalidRequest as error:
            raise MalformedMessage(f"{field}[{position}]: {error.message}") from error
    context = body.get("context")
    if context is not None:
        if not isinstance(context, dict):
            raise MalformedMessage("context must be a JSON object")
        if len(to_json(context, compact=True).encode()) > MAX_CONTEXT_BYTES:
            raise MalformedMessage(f"context is larger than {MAX_CONTEXT_BYTES} bytes")
    attempt = body.get("attempt", 0)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or not 0 <= attempt <= MAX_ATTEMPT:
        raise MalformedMessage("attempt must be a non-negative integer")
    chains = _chains(body, len(ids))
    published = body.get("published", [])
    if (
        not isinstance(published, list)
        or len(published) > 2 * MAX_IDS
        or not all(isinstance(event, str) and 1 <= len(event) <= MAX_EVENT_ID_CHARS for event in published)
    ):
        raise MalformedMessage("published must be a list of event ids")
    # Duplicates collapse to the first (its chain with it).
    first = {key: position for position, key in reversed(list(enumerate(ids)))}
    keep = sorted(first.values())
    return TrackRequest(
        kind=kind,
        ids=tuple(ids[position] for position in keep),
        context=context,
        attempt=attempt,
        chains=tuple(chains[position] for position in keep) if chains is not None else None,
        since=_time_field(body, "since"),
        not_before=_time_field(body, "not_before"),
        published=tuple(published),
    )

"""The normalized delivery report: the one answer every provider is translated into.

The shape is pinned (README "Every answer is a report"); clients depend on every field name.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Provider(StrEnum):
    OPENMARKET = "openmarket"
    WOOXY = "wooxy"
    WWT = "wwt"


class Status(StrEnum):
    PENDING = "pending"  # accepted or queued by the provider, not yet with the carrier
    SENT = "sent"  # with the carrier, no receipt yet
    DELIVERED = "delivered"  # final success
    UNDELIVERED = "undelivered"  # final: the carrier or handset could not take it
    EXPIRED = "expired"  # final: validity period ran out
    REJECTED = "rejected"  # final: blocked or refused (carrier, firewall, content)
    FAILED = "failed"  # final: provider or request failure
    UNKNOWN = "unknown"  # the provider answered something the mapping does not know
    NOT_FOUND = "not_found"  # the provider has no such message


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one provider code or status string means: one row of a mapping table."""

    status: Status
    final: bool
    retryable: bool = False


# What a code or status string no mapping table knows means: never a guess, and asking again may tell more.
UNKNOWN_OUTCOME = Outcome(Status.UNKNOWN, final=False)


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    code: str
    description: str | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z` suffix; naive datetimes are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    timespec = "milliseconds" if value.microsecond else "seconds"
    return value.isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


PROVIDER_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", re.ASCII)


def parse_provider_time(value: object) -> datetime | None:
    """`YYYY-MM-DD HH:MM:SS` as Wooxy and WWT send it (no zone: taken as UTC). Junk becomes None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        # The documented shape goes through fromisoformat (C, ~30x faster than strptime: a bulk chunk parses 100);
        # anything else keeps strptime's reading (e.g. one-digit months).
        parsed = datetime.fromisoformat(text) if PROVIDER_TIME.fullmatch(text) else datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Report:
    provider: Provider
    id: str
    status: Status
    final: bool
    provider_status: ProviderStatus
    retryable: bool = False
    submitted_at: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    recipient: str | None = None
    price: Decimal | None = None
    currency: str | None = None
    checked_at: datetime = field(default_factory=utcnow)
    details: dict[str, Any] | None = None

    @classmethod
    def from_outcome(cls, provider: Provider, message_id: str, outcome: Outcome, provider_status: ProviderStatus, **fields: Any) -> Report:
        return cls(
            provider=provider,
            id=message_id,
            status=outcome.status,
            final=outcome.final,
            retryable=outcome.retryable,
            provider_status=provider_status,
            **fields,
        )

    def with_status(self, outcome: Outcome) -> Report:
        return replace(self, status=outcome.status, final=outcome.final, retryable=outcome.retryable)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "provider": str(self.provider),
            "id": self.id,
            "status": str(self.status),
            "final": self.final,
            "provider_status": {"code": self.provider_status.code, "description": self.provider_status.description},
            "retryable": self.retryable,
            "submitted_at": iso(self.submitted_at),
            "sent_at": iso(self.sent_at),
            "delivered_at": iso(self.delivered_at),
            "recipient": self.recipient,
            "price": _price_number(self.price),
            "currency": self.currency,
            "checked_at": iso(self.checked_at),
        }
        if self.details:
            body["details"] = self.details
        return body

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Report:
        """The inverse of `to_dict` (used where reports are stored or passed between states)."""
        price = body.get("price")
        return cls(
            provider=Provider(body["provider"]),
            id=body["id"],
            status=Status(body["status"]),
            final=bool(body["final"]),
            provider_status=ProviderStatus(str(body["provider_status"]["code"]), body["provider_status"].get("description")),
            retryable=bool(body.get("retryable", False)),
            submitted_at=parse_iso(body.get("submitted_at")),
            sent_at=parse_iso(body.get("sent_at")),
            delivered_at=parse_iso(body.get("delivered_at")),
            recipient=body.get("recipient"),
            price=Decimal(str(price)) if price is not None else None,
            currency=body.get("currency"),
            checked_at=parse_iso(body["checked_at"]) or utcnow(),
            details=body.get("details"),
        )


def _price_number(price: Decimal | None) -> float | None:
    """The price as a JSON number; one a double cannot hold is null (see `parse_price`)."""
    if price is None or not price.is_finite():
        return None
    number = float(price)
    return number if math.isfinite(number) else None


def not_found(provider: Provider, message_id: str, code: str, description: str | None, **fields: Any) -> Report:
    """The provider has no such message. Final: asking again will not make it appear."""
    return Report(
        provider=provider,
        id=message_id,
        status=Status.NOT_FOUND,
        final=True,
        provider_status=ProviderStatus(code, description),
        **fields,
    )


def parse_price(value: object) -> Decimal | None:
    """Prices come as numbers or as strings like "1.1000000"; anything else is dropped, not guessed.

    The report gives a price as a JSON number, which clients read as a double: a price no double can hold
    ("1e400", "NaN", "Infinity") is dropped (null) like any other unreadable price, never turned into Infinity.
    """
    if isinstance(value, bool) or value is None:
        return None
    try:
        price = Decimal(str(value))
    except ArithmeticError:
        return None
    return price if price.is_finite() and math.isfinite(float(price)) else None


def to_json(value: Any, *, compact: bool = False) -> str:
    """JSON as every response, results file and stored document is written: standard JSON only. A NaN or an
    Infinity anywhere is a bug (ValueError), not a body that half of JSON parsers refuse."""
    return json.dumps(value, allow_nan=False, separators=(",", ":") if compact else None)

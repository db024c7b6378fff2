"""WWT REST (BSG platform): `GET /rest/sms/{id}` and `GET /rest/sms/reference/{reference}`.

How an answer is read (the seed document, BSG's public clients and observed answers):
- The body is JSON whether the HTTP status is 200 or 4xx; errors usually come inside HTTP 200.
- `error` is a number or a string ("0", 0, "20", 20): read as int(str(x)). 0 is success.
- HTTP 401/403, or error 1 "Invalid API key", is an authentication failure (ProviderAuthError).
- Times are `YYYY-MM-DD HH:MM:SS` with no zone documented anywhere: taken as UTC (an assumption).
- `time_dr` is the delivery-report time: it becomes `delivered_at` only when the status is delivered;
  otherwise (e.g. the time an undelivered receipt arrived) it is kept under `details.time_dr`.
- `time_sent` is the sending time once the message has left WWT; while it is still pending there it is the
  time it is scheduled to go, kept under `details.scheduled_at` (`sent_at` stays null).
- A time or price that is present but unreadable is never guessed: the field stays null and the value as
  sent goes under `details.unparsed`. A price too large for a JSON number (e.g. "1e400") counts as unreadable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..credentials import secret_fields
from ..errors import InvalidRequest, ProviderAuthError, ProviderError
from ..http import HttpClient
from ..mapping.wwt import ErrorMeaning, classify, describe_error, error_meaning
from ..model import Provider, ProviderStatus, Report, Status, not_found, parse_price
from . import UNPARSED_TEXT_MAX, read_time

PROVIDER = Provider.WWT
REFERENCE_PATTERN = re.compile(r"[a-zA-Z0-9]{1,32}")
ID_PATTERN = re.compile(r"[0-9]{1,20}")  # ASCII digits only: str.isdigit() would accept "١٢"
AUTH_HTTP_STATUSES = frozenset({401, 403})


@dataclass(frozen=True)
class WwtCredentials:
    api_key: str

    def __repr__(self) -> str:  # keep the key out of logs and tracebacks
        return "WwtCredentials(api_key=***)"

    @classmethod
    def from_secret(cls, value: Any, secret_name: str) -> WwtCredentials:
        """Pinned shape `{"api_key": "..."}` (a mapping, or its JSON text). Errors name the secret only."""
        (api_key,) = secret_fields(value, secret_name, ("api_key",))
        return cls(api_key=api_key)


def validate_id(value: str) -> str:
    """A WWT message id: 1-20 decimal digits, nothing else (no sign, space or decimal point)."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise InvalidRequest("a WWT message id must be 1 to 20 decimal digits", {"id": _shown(value)})
    return value


def validate_reference(value: str) -> str:
    """A WWT external reference: 1-32 characters of [a-zA-Z0-9] (the documented pattern)."""
    if not isinstance(value, str) or not REFERENCE_PATTERN.fullmatch(value):
        raise InvalidRequest("a WWT reference must be 1 to 32 characters of a-z, A-Z or 0-9", {"reference": _shown(value)})
    return value


def _shown(value: object) -> str:
    """The rejected input for the error details, bounded so a huge value cannot flood a response."""
    text = value if isinstance(value, str) else repr(value)
    return text[:64]


def parse_response(requested: str, body: bytes, http_status: int, checked_at: datetime | None = None) -> Report:
    """Read one status answer. `requested` is the id or reference as asked; it becomes Report.id."""
    if http_status in AUTH_HTTP_STATUSES:
        code, description = _error_fields(_json_or_none(body))
        raise ProviderAuthError(str(PROVIDER), f"WWT refused the API key (HTTP {http_status})", code, description)

    payload = _json_or_none(body)
    if not isinstance(payload, dict):
        raise ProviderError(str(PROVIDER), "WWT answered with a body that is not a JSON object", http_status=http_status)
    stamp = {"checked_at": checked_at} if checked_at is not None else {}

    error = _error_code(payload, http_status)
    if error is None:
        # Every documented body carries `error`; one without it is read as success only if it looks like one.
        if 200 <= http_status < 300 and isinstance(payload.get("status"), str):
            return _success(requested, payload, stamp)
        raise ProviderError(str(PROVIDER), "WWT answered without an error code or status", http_status=http_status)
    if error == 0:
        if not 200 <= http_status < 300:
            raise ProviderError(str(PROVIDER), f"WWT answered HTTP {http_status} with error 0", "0", http_status=http_status)
        return _success(requested, payload, stamp)

    description = _text(payload.get("errorDescription")) or describe_error(error)
    match error_meaning(error):
        case ErrorMeaning.NOT_FOUND:
            return not_found(PROVIDER, requested, str(error), description, **stamp)
        case ErrorMeaning.AUTH:
            raise ProviderAuthError(str(PROVIDER), f"WWT refused the API key (error {error})", str(error), description)
        case ErrorMeaning.REQUEST_REJECTED:
            message = f"WWT rejected a request we had validated (error {error}): a bug on our side or a change at WWT"
        case _:
            message = f"WWT answered error {error}"
    raise ProviderError(str(PROVIDER), message, str(error), description, http_status=http_status)


def _success(requested: str, payload: dict[str, Any], stamp: dict[str, Any]) -> Report:
    raw_status = payload.get("status")
    if not isinstance(raw_status, str) or not raw_status.strip():
        raise ProviderError(str(PROVIDER), "WWT answered success without a status", "0", _text(payload.get("errorDescription")))
    outcome = classify(raw_status)
    details: dict[str, Any] = {"wwt_id": _text(payload.get("id")), "reference": _text(payload.get("reference"))}
    unparsed: dict[str, str] = {}
    submitted_at = read_time(payload, "time_in", unparsed)
    time_sent = read_time(payload, "time_sent", unparsed)
    time_dr = read_time(payload, "time_dr", unparsed)
    sent_at = time_sent
    if outcome.status is Status.PENDING and time_sent is not None:
        # Before the message leaves WWT, `time_sent` is when it is scheduled to go: not a sending time.
        sent_at = None
        details["scheduled_at"] = payload["time_sent"]
    delivered_at = None
    if outcome.status is Status.DELIVERED:
        delivered_at = time_dr
    elif time_dr is not None:
        details["time_dr"] = payload["time_dr"]  # the time a non-delivery receipt arrived, as sent
    raw_price = payload.get("price")
    price = parse_price(raw_price)  # None for "1e400" too: no JSON number holds it (model.parse_price)
    if price is None and raw_price is not None and raw_price != "":
        unparsed["price"] = (_text(raw_price) or repr(raw_price))[:UNPARSED_TEXT_MAX]
    if unparsed:
        details["unparsed"] = unparsed
    return Report.from_outcome(
        PROVIDER,
        requested,
        outcome,
        ProviderStatus(raw_status),
        submitted_at=submitted_at,
        sent_at=sent_at,
        delivered_at=delivered_at,
        recipient=_text(payload.get("msisdn")),
        price=price,
        currency=_text(payload.get("currency")),
        details=details,
        **stamp,
    )


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested too deep to read
        return None


def _error_code(payload: dict[str, Any], http_status: int) -> int | None:
    """`error` as int(str(x)): 0, "0", 20 and "20" all read. Missing -> None; anything else -> ProviderError."""
    raw = payload.get("error")
    if raw is None:
        return None
    try:
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise ValueError  # True, 20.5 or a list are not codes
        return int(str(raw).strip())
    except ValueError:
        raise ProviderError(str(PROVIDER), "WWT answered with an error code that is not an integer", http_status=http_status) from None


def _error_fields(payload: Any) -> tuple[str | None, str | None]:
    """Best-effort code and description from an auth-failure body (BSG or OpenAPI shape), for details."""
    if not isinstance(payload, dict):
        return None, None
    code = payload.get("error", payload.get("code"))
    description = payload.get("errorDescription", payload.get("message"))
    return _text(code), _text(description)


def _text(value: object) -> str | None:
    """Strings as sent, numbers as their decimal text (the docs say "integer", examples send strings)."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value)
    return text if text else None


class WwtClient:
    """One WWT account. Ids and references are validated before any request is made."""

    def __init__(self, http: HttpClient, base_url: str, credentials: WwtCredentials, auth_header: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.auth_header = auth_header

    def by_id(self, message_id: str) -> Report:
        validate_id(message_id)
        return self._get(f"/rest/sms/{message_id}", message_id)

    def by_reference(self, reference: str) -> Report:
        validate_reference(reference)
        return self._get(f"/rest/sms/reference/{reference}", reference)

    def _get(self, path: str, requested: str) -> Report:
        headers = {self.auth_header: self.credentials.api_key, "Accept": "application/json"}
        response = self.http.send("GET", self.base_url + path, headers=headers)
        return parse_response(requested, response.body, response.status)

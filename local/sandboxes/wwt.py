"""A local WWT REST API (BSG platform): `GET /rest/sms/{id}` and `GET /rest/sms/reference/{reference}`.

Behaviour, and where each part comes from (the seed document and BSG's public clients):
- Auth: the `X-API-KEY` header (BSG v1; `auth_header` changes the name). A wrong or missing key answers
  HTTP 401 with `{"error": 1, "errorDescription": "Invalid API key"}`: code 1 is bsg-python's client
  code for that case, and that the API itself uses it is our inference.
- Errors are JSON `{"error": N, "errorDescription": "..."}` with codes from the seed (20-36), inside
  HTTP `error_http_status` (200 by default: the docs suggest errors come inside HTTP 200; tests set 404).
  `string_error_codes` sends every code as a string ("0", "20"), as BSG's create endpoint does.
- Success: the BSG example body. `id` and `msisdn` are strings (the examples), `price` as seeded.
- Times are `YYYY-MM-DD HH:MM:SS` in UTC (WWT documents no zone). `time_in` is when the message was
  seeded; `time_sent` is when it left the pending states (scheduled, moderation, accepted, sending) and
  `time_dr` when it reached a status that comes from a delivery report. Until then both are sent as ""
  (our choice: BSG's example always carries the keys). Seeding `time_in`/`time_sent`/`time_dr` fixes them.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .base import Reply, Request, Sandbox, SeededMessage

DEFAULT_CREDENTIALS = {"api_key": "test_sandbox_wwt_key"}
DEFAULT_AUTH_HEADER = "X-API-KEY"

PENDING_STATUSES = frozenset({"scheduled", "moderation", "accepted", "sending"})
# Statuses that a delivery report produces: reaching one sets `time_dr`.
REPORTED_STATUSES = frozenset(
    {"delivered", "read", "undelivered", "undeliverable", "expired", "failed", "rejected", "not_viber_user", "not_service_user"}
)

ID_PATH = re.compile(r"/rest/sms/([^/]*)")
REFERENCE_PATH = re.compile(r"/rest/sms/reference/([^/]*)")
REFERENCE_PATTERN = re.compile(r"[a-zA-Z0-9]{1,32}")
ID_PATTERN = re.compile(r"[0-9]{1,20}")

NOT_FOUND = (20, "SMS not found")
REFERENCE_MISSING = (22, "the external ID of the SMS request is missing")
INVALID_PAYLOAD = (24, "invalid query payload")
BAD_REFERENCE = (27, "incorrect external SMS ID")
INVALID_API_KEY = (1, "Invalid API key")


def _wwt_time(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S") if epoch is not None else ""


class WwtSandbox(Sandbox):
    name = "wwt"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth_header = DEFAULT_AUTH_HEADER
        self.api_key = DEFAULT_CREDENTIALS["api_key"]
        self.error_http_status = 200
        self.string_error_codes = False

    # ---- requests --------------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        if request.method != "GET":
            return Reply.json(405, {"code": 405, "message": "Method Not Allowed"})
        if not hmac.compare_digest(request.headers.get(self.auth_header.lower(), "").encode(), self.api_key.encode()):
            return self._error(INVALID_API_KEY, http_status=401)
        if match := REFERENCE_PATH.fullmatch(request.path):
            return self._by_reference(match.group(1))
        if match := ID_PATH.fullmatch(request.path):
            return self._by_id(match.group(1))
        # Any other path is not part of the API: a web-server 404, not a WWT error code.
        return Reply.json(404, {"code": 404, "message": "Not Found"})

    def _by_id(self, message_id: str) -> Reply:
        if not ID_PATTERN.fullmatch(message_id):
            return self._error(INVALID_PAYLOAD)
        message = self.messages.get(message_id)
        return self._success(message) if message else self._error(NOT_FOUND)

    def _by_reference(self, reference: str) -> Reply:
        if not reference:
            return self._error(REFERENCE_MISSING)
        if not REFERENCE_PATTERN.fullmatch(reference):
            return self._error(BAD_REFERENCE)
        with self._lock:
            found = [m for m in self.messages.values() if m.fields.get("reference") == reference]
        # References are the sender's; if one was reused, the newest message answers.
        return self._success(found[-1]) if found else self._error(NOT_FOUND)

    def _code(self, code: int) -> int | str:
        return str(code) if self.string_error_codes else code

    def _error(self, error: tuple[int, str], http_status: int | None = None) -> Reply:
        code, description = error
        status = http_status if http_status is not None else self.error_http_status
        return Reply.json(status, {"error": self._code(code), "errorDescription": description})

    def _success(self, message: SeededMessage) -> Reply:
        now = self.clock.now()
        status = message.state(now)
        fields = message.fields
        body = {
            "error": self._code(0),
            "errorDescription": "No errors",
            "id": message.id,
            "msisdn": str(fields.get("msisdn", "380972000001")),
            "reference": fields.get("reference", ""),
            "time_in": fields.get("time_in", _wwt_time(message.created_at)),
            "time_sent": fields.get("time_sent", _wwt_time(self._reached(message, now, lambda s: s not in PENDING_STATUSES))),
            "time_dr": fields.get("time_dr", _wwt_time(self._reached(message, now, lambda s: s in REPORTED_STATUSES))),
            "status": status,
            "price": fields.get("price", 0.23),
            "currency": fields.get("currency", "EUR"),
        }
        return Reply.json(200, body)

    @staticmethod
    def _reached(message: SeededMessage, now: float, wanted: Callable[[str], bool]) -> float | None:
        """When the message first reached a status that `wanted` accepts, if it has by `now`."""
        for offset, status in message.steps:
            if now - message.created_at >= offset and wanted(status):
                return message.created_at + offset
        return None

    def malformed_body(self) -> Reply:
        return Reply(200, b'{"error":0,"errorDescription":"No errors","id":"21', "application/json")

    # ---- seeding ---------------------------------------------------------------------------------
    def seed_from_json(self, payload: dict[str, Any]) -> None:
        """`{"id": "211", "steps": [[0, "accepted"], [5, "delivered"]], "reference": "ext19", ...}`."""
        message_id = str(payload["id"])
        if not ID_PATTERN.fullmatch(message_id):
            raise ValueError("a WWT id is 1 to 20 decimal digits")
        steps = [(float(offset), str(status)) for offset, status in payload["steps"]]
        if not steps:
            raise ValueError("steps must not be empty")
        reference = payload.get("reference")
        if reference is not None and not REFERENCE_PATTERN.fullmatch(str(reference)):
            raise ValueError("a WWT reference is 1 to 32 characters of [a-zA-Z0-9]")
        self.add_message(message_id, steps, **{k: v for k, v in payload.items() if k not in ("id", "steps")})

    def seed_demo(self) -> list[str]:
        """Messages for `make run`: one per interesting path. Returns the seeded ids."""
        demo = [
            ("211", [(0, "accepted"), (5, "sent"), (10, "delivered")], {"reference": "extid19", "msisdn": "380972000001"}),
            ("212", [(0, "accepted"), (5, "sent"), (20, "undeliverable")], {"reference": "extid20", "msisdn": "380972000002"}),
            ("213", [(0, "sent"), (30, "expired")], {"reference": "extid21", "msisdn": "380972000003", "price": "1.1000000"}),
            ("214", [(0, "sent"), (15, "unknown")], {"reference": "extid22", "msisdn": "380972000004"}),
            ("215", [(0, "rejected")], {"reference": "extid23", "msisdn": "380972000005", "price": 0}),
            ("216", [(0, "scheduled")], {"reference": "extid24", "msisdn": "380972000006"}),
        ]
        for message_id, steps, fields in demo:
            self.add_message(message_id, steps, **fields)
        return [message_id for message_id, _, _ in demo]

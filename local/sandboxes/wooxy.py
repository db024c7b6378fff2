"""A local stand-in for Wooxy v3 "Get SMS Delivery Status" (`POST /v3/sms/info`), as the seed document
describes it: `Access-Token` auth, `{"ids": [...]}` bodies, at most 100 ids, `null` entries plus
"SMS <id> not found" errors for unknown ids, and the documented `result: false` error strings.

Wooxy does not document HTTP statuses (the seed document). This sandbox answers 200 for
`result: true`, 401 for "Invalid authorization token!" and 400 for the argument errors; the official SDK's
Guzzle adapter reads JSON bodies out of 4xx answers, which suggests the real API does use 4xx. Clients
must decide on the body, not the status.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from .base import Reply, Request, Sandbox, SeededMessage

INFO_PATH = "/v3/sms/info"
MAX_IDS = 100
DEFAULT_CREDENTIALS = {"access_token": "sandbox-wooxy-token"}
STATUSES = ("new", "queued", "sent", "delivered", "undelivered", "failed")  # the documented values
# The usual life of a message, in seconds after creation.
DELIVERING = [(0, "new"), (2, "queued"), (5, "sent"), (10, "delivered")]


def _error(status: int, *errors: str) -> Reply:
    return Reply.json(status, {"result": False, "errors": list(errors)})


def _created_at(epoch: float) -> str:
    """Wooxy's createdAt format: `YYYY-MM-DD HH:MM:SS`, UTC, no zone suffix."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


class WooxySandbox(Sandbox):
    name = "wooxy"

    def __init__(self, *args: Any, access_token: str = DEFAULT_CREDENTIALS["access_token"], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_token = access_token  # tests change it to simulate a rotated key
        self.mangle_keys = False  # space in data keys, like the doc's "5 bc0a73d19b6051f963023c2"
        self.silent_ids: set[str] = set()  # ids left out of both data and errors
        self.max_ids_per_request = 0  # the most ids seen in one request, valid or not

    # ---- provider behaviour ----------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        if request.path != INFO_PATH:
            return _error(404, "Not Found")  # undocumented: only this method is simulated
        if request.method != "POST":
            return _error(405, "Method Not Allowed")
        payload = self._decode(request.body)
        self._count_ids(payload)
        if not self._authorized(request):
            return _error(401, "Invalid authorization token!")
        problem = self._validate(payload)
        if problem is not None:
            return _error(400, problem)
        return Reply.json(200, self._answer(payload["ids"]))

    def malformed_body(self) -> Reply:
        return Reply(200, b'{"result":true,"data":{"5d91537bd132fdf45916520a":{"id":"5d91537bd1', "application/json")

    def seed_from_json(self, payload: dict[str, Any]) -> None:
        """`POST /_sandbox/messages`: {"id": ..., "steps": [[seconds, "status"], ...], "phone_number": ..., ...}."""
        steps = payload.get("steps")
        well_formed = isinstance(steps, list) and all(isinstance(s, list) and len(s) == 2 and isinstance(s[1], str) for s in steps)
        if not well_formed or not steps:
            raise ValueError('steps must be a non-empty list of [seconds, "status"]')
        super().seed_from_json(payload)

    def seed_demo(self) -> list[str]:
        """A few messages for `make run`; returns their ids."""
        demo = {
            "5d91537bd132fdf45916520a": DELIVERING,
            "5d91537bd132fdf45916520b": [(0, "new"), (2, "queued"), (5, "sent"), (15, "failed")],
            "5d91537bd132fdf45916520c": [(0, "new"), (3, "sent"), (12, "undelivered")],
            "5d91537bd132fdf45916520d": [(0, "new"), (1, "queued")],  # stays queued
        }
        for message_id, steps in demo.items():
            self.add_message(message_id, steps, phone_number="+15555555", from_name="Sender name", text="Sandbox message")
        return list(demo)

    # ---- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _decode(body: bytes) -> Any:
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            return None

    def _count_ids(self, payload: Any) -> None:
        if isinstance(payload, dict) and isinstance(payload.get("ids"), list):
            with self._lock:
                self.max_ids_per_request = max(self.max_ids_per_request, len(payload["ids"]))

    def _authorized(self, request: Request) -> bool:
        token = request.headers.get("access-token", "")
        return bool(token) and hmac.compare_digest(token.encode(), self.access_token.encode())

    @staticmethod
    def _validate(payload: Any) -> str | None:
        """The documented error string for a bad body, or None."""
        if not isinstance(payload, dict):
            return "Bad Request"
        ids = payload.get("ids")
        if ids is None:
            return "Argument ids required"
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return "Argument ids must be an array of strings"
        if not ids:
            return "Argument ids can not be empty"
        if any(not i for i in ids):
            return "each id must be a non-empty string"
        if len(ids) > MAX_IDS:
            return f"ids count must be less or equal {MAX_IDS}"
        return None

    def _answer(self, ids: list[str]) -> dict[str, Any]:
        now = self.clock.now()
        data: dict[str, Any] = {}
        errors: list[str] = []
        with self._lock:
            messages = {i: self.messages.get(i) for i in ids}
            silent = set(self.silent_ids)
        for message_id, message in messages.items():
            if message_id in silent:
                continue
            key = message_id[:1] + " " + message_id[1:] if self.mangle_keys else message_id
            if message is None:
                data[key] = None
                errors.append(f"SMS {message_id} not found")
            else:
                data[key] = self._entry(message, now)
        return {"result": True, "data": data, "errors": errors}

    @staticmethod
    def _entry(message: SeededMessage, now: float) -> dict[str, Any]:
        fields = message.fields
        return {
            "id": message.id,
            "status": message.state(now),
            "createdAt": _created_at(message.created_at),
            "text": fields.get("text", "Hi, user! Your code is 1234"),
            "phoneNumber": fields.get("phone_number", "+15555555"),
            "fromName": fields.get("from_name", "Sender name"),
        }

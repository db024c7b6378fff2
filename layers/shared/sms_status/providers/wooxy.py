"""Wooxy v3 "Get SMS Delivery Status": `POST /v3/sms/info` with `{"ids": [...]}`, up to 100 ids a request.

What the answers mean (the seed document "Get SMS Delivery Status"):
- `{"result": true, "data": {<id>: {...} | null}, "errors": ["SMS <id> not found", ...]}`: a partial
  answer. A `null` entry or a "not found" error is that one id's answer, not a failed call (the official
  PHP SDK throws on any non-empty `errors`, losing the whole batch: we do not).
- The documented example spells one key "5 bc0a73d19b6051f963023c2" (with a space), so data objects are
  matched on their `id` field first, then on their key, where a key with whitespace stands for the id without
  it (never the other way round: no id gets another id's status, see `_Spelled`).
- One `data` entry we cannot read (not an object, no status string) is an error report for its id
  (`unreadable_entry`); the other ids keep their answers.
- `{"result": false, "errors": [...]}`: the call failed; the documented strings are the error "codes"
  (Wooxy has no numeric codes), so they are matched in one table here, `ERROR_RULES`.
- HTTP statuses are not documented: the body decides, whatever the status (a 4xx with a JSON body is read).
- `text` (the message content) is never copied anywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any

from ..credentials import secret_fields
from ..errors import InvalidRequest, ProviderAuthError, ProviderError, ProviderUnavailable
from ..http import HttpClient
from ..lookup import error_report
from ..mapping.wooxy import classify
from ..model import Provider, ProviderStatus, Report, not_found, utcnow
from ..validation import check_keys
from . import read_time

PROVIDER = Provider.WOOXY
INFO_PATH = "/v3/sms/info"
MAX_IDS_PER_REQUEST = 100  # documented: "You can include only 100 IDs in one request"
NOT_FOUND_CODE = "not_found"
NOT_MENTIONED_CODE = "not_mentioned"
UNREADABLE_ENTRY_CODE = "unreadable_entry"


# ---- credentials ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WooxyCredentials:
    access_token: str = field(repr=False)  # never in a repr, a log line or a traceback

    @classmethod
    def from_secret(cls, value: object, secret_name: str) -> WooxyCredentials:
        """The pinned secret shape `{"access_token": "..."}` (a dict, or its JSON text)."""
        (token,) = secret_fields(value, secret_name, ("access_token",))
        return cls(token)


# ---- method errors: the documented strings, in one table -----------------------------------------
class ErrorKind(Enum):
    AUTH = "auth"  # ProviderAuthError: the caller re-reads the secret once (rotation)
    UNAVAILABLE = "unavailable"  # ProviderUnavailable: Wooxy's own failure, worth retrying later
    REQUEST = "request"  # ProviderError: Wooxy refused what we sent
    NOT_FOUND = "not_found"  # one id's answer, not a failed call


@dataclass(frozen=True, slots=True)
class ErrorRule:
    pattern: re.Pattern[str]
    kind: ErrorKind
    code: str  # our short name for the string (Wooxy has no error codes)
    safe_text: str | None = None  # the documented template, returned instead of a raw string that echoes the token


# Runs at import only, before mutmut switches a mutant on: its mutants could never be killed, so none are made.
def _rule(pattern: str, kind: ErrorKind, code: str, safe_text: str | None = None) -> ErrorRule:  # pragma: no mutate block
    return ErrorRule(re.compile(pattern, re.IGNORECASE), kind, code, safe_text)


# Matched in order, anchored at the start, case-insensitive (live wording may add a suffix or change case).
ERROR_RULES: tuple[ErrorRule, ...] = (
    _rule(r"SMS\s+(?P<id>.+?)\s+not found", ErrorKind.NOT_FOUND, NOT_FOUND_CODE),
    _rule(r"Invalid authorization token", ErrorKind.AUTH, "invalid_token"),
    _rule(r"no matches found for access token", ErrorKind.AUTH, "token_not_found", "no matches found for access token {accessToken}"),
    _rule(
        r"access token check failed", ErrorKind.AUTH, "token_check_failed", "access token check failed for key/secret {key}/{accessToken}"
    ),
    _rule(r"user\s+\S*\s*not enabled", ErrorKind.AUTH, "user_not_enabled"),
    _rule(r"no data found for key", ErrorKind.AUTH, "no_data_for_key"),
    _rule(r"Internal server error", ErrorKind.UNAVAILABLE, "internal_error"),
    _rule(r"Bad Request", ErrorKind.REQUEST, "bad_request"),
    _rule(r"Argument ids must be an array of strings", ErrorKind.REQUEST, "ids_not_array"),
    _rule(r"Argument ids can not be empty", ErrorKind.REQUEST, "ids_empty"),
    _rule(r"each id must be a non-empty string", ErrorKind.REQUEST, "id_empty"),
    _rule(r"ids count must be less or equal", ErrorKind.REQUEST, "too_many_ids"),
    _rule(r"Argument\s+\S+\s+required", ErrorKind.REQUEST, "argument_required"),
)
UNKNOWN_ERROR_CODE = "unknown_error"
# When several strings come back, the one that decides the error type: auth first (a fresh secret may fix
# the call), then Wooxy's own failure, then what was wrong with our request.
_PRECEDENCE = (ErrorKind.AUTH, ErrorKind.UNAVAILABLE, ErrorKind.REQUEST)


@dataclass(frozen=True, slots=True)
class MethodError:
    """One string of `errors`, classified; `text` is safe to return (token-echoing strings are replaced)."""

    kind: ErrorKind | None  # None: not a documented string
    code: str
    text: str
    id: str | None = None  # the id of an "SMS <id> not found"


def classify_error(raw: str, access_token: str | None = None) -> MethodError:
    text = raw.strip()
    for rule in ERROR_RULES:
        found = rule.pattern.match(text)
        if found:
            message_id = found.group("id") if "id" in rule.pattern.groupindex else None
            return MethodError(rule.kind, rule.code, rule.safe_text or _scrub(text, access_token), message_id)
    return MethodError(None, UNKNOWN_ERROR_CODE, _scrub(text, access_token))


def _scrub(text: str, access_token: str | None) -> str:
    return text.replace(access_token, "***") if access_token else text


def _method_failure(errors: list[MethodError], http_status: int) -> Exception:
    """The typed error for `result: false`."""
    texts = [e.text for e in errors]
    description = "; ".join(texts) or None
    for kind in _PRECEDENCE:
        decisive = next((e for e in errors if e.kind is kind), None)
        if decisive is None:
            continue
        if kind is ErrorKind.AUTH:
            return ProviderAuthError(PROVIDER, "wooxy refused the access token", decisive.code, decisive.text)
        if kind is ErrorKind.UNAVAILABLE:
            return ProviderUnavailable(PROVIDER, "wooxy reported an internal server error", http_status=http_status)
        return _provider_error(f"wooxy rejected the request: {decisive.text}", decisive.code, description, http_status, texts)
    code = next((e.code for e in errors if e.kind is None), UNKNOWN_ERROR_CODE)
    message = f"wooxy answered with an error: {description}" if description else "wooxy answered result:false without errors"
    return _provider_error(message, code, description, http_status, texts)


def _provider_error(message: str, code: str | None, description: str | None, http_status: int, texts: list[str]) -> ProviderError:
    error = ProviderError(PROVIDER, message, code, description, http_status)
    error.details["errors"] = texts  # the raw strings (token-echoing ones replaced)
    return error


def _shape_error(what: str, http_status: int) -> ProviderError:
    return ProviderError(PROVIDER, f"wooxy answered with {what}", http_status=http_status)


# ---- parsing -------------------------------------------------------------------------------------
def _decode(body: bytes | Mapping[str, Any], http_status: int) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, an HTML page, a truncated or absurdly nested body
        raise _shape_error("a body that is not JSON", http_status) from None
    if not isinstance(payload, dict):
        raise _shape_error("JSON that is not an object", http_status)
    return payload


def _compact(key: str) -> str:
    """A data key without whitespace: "5 bc0a73d19b6051f963023c2" -> "5bc0a73d19b6051f963023c2"."""
    return "".join(key.split())


def _has_space(text: str) -> bool:
    return _compact(text) != text


@dataclass(frozen=True, slots=True)
class _Unreadable:
    """A `data` entry we cannot read: an error report for its id, not a failed call."""

    why: str


@dataclass
class _Spelled:
    """Values by their exact spelling, plus the spellings with whitespace by their compacted text.

    The seed's key "5 bc0a73d19b6051f963023c2" answers the id "5bc0a73d19b6051f963023c2": a spelling with
    whitespace stands for the id without it. Only that way round: the id "a b" is never answered by "ab",
    and a compacted spelling that two keys share ("a bc", "ab c") answers no one (it would be a guess).
    """

    exact: dict[str, Any] = field(default_factory=dict)
    spaced: dict[str, list[str]] = field(default_factory=dict)

    def add(self, spelling: str, value: Any) -> None:
        if spelling in self.exact:
            return  # the first wins (a JSON object repeating a key is already ambiguous)
        self.exact[spelling] = value
        if _has_space(spelling):
            self.spaced.setdefault(_compact(spelling), []).append(spelling)

    def find(self, message_id: str) -> tuple[bool, Any]:
        if message_id in self.exact:
            return True, self.exact[message_id]
        spellings = self.spaced.get(message_id, []) if not _has_space(message_id) else []
        if len(spellings) == 1:
            return True, self.exact[spellings[0]]
        return False, None


@dataclass
class _Answer:
    """What one response says, indexed for lookup by requested id."""

    by_id: dict[str, dict[str, Any] | _Unreadable] = field(default_factory=dict)  # entries by their own `id` field
    by_key: _Spelled = field(default_factory=_Spelled)  # entry, None (null) or _Unreadable, by data key
    not_found: _Spelled = field(default_factory=_Spelled)  # "SMS <id> not found" strings, by <id>
    other_errors: list[str] = field(default_factory=list)  # undocumented per-id strings (result: true)


def _read_data(data: object, http_status: int) -> _Answer:
    answer = _Answer()
    if isinstance(data, list) and not data:
        data = {}  # PHP encodes an empty associative array as []
    if not isinstance(data, dict):
        raise _shape_error("`data` that is not an object", http_status)
    for key, entry in data.items():
        if entry is None:
            answer.by_key.add(key, None)
            continue
        if not isinstance(entry, dict):
            answer.by_key.add(key, _Unreadable("wooxy answered a data entry for this id that is neither an object nor null"))
            continue
        status = entry.get("status")
        value: dict[str, Any] | _Unreadable = entry
        if not isinstance(status, str) or not status.strip():
            value = _Unreadable("wooxy answered a data entry for this id without a status string")
        own_id = entry.get("id")
        if isinstance(own_id, str) and own_id:
            answer.by_id.setdefault(own_id, value)
        answer.by_key.add(key, value)
    return answer


def _entry_for(answer: _Answer, message_id: str) -> tuple[bool, Any]:
    """This id's data entry: the one whose `id` field names it, else the one under its key unless that entry's
    own `id` names another id (the `id` field wins: an entry never answers for another id)."""
    if message_id in answer.by_id:
        return True, answer.by_id[message_id]
    found, value = answer.by_key.find(message_id)
    if found and isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"] and value["id"] != message_id:
        return False, None
    return found, value


def _read_errors(payload: Mapping[str, Any], http_status: int) -> list[str]:
    errors = payload.get("errors", [])
    if errors is None:
        return []
    if not isinstance(errors, list):
        raise _shape_error("`errors` that is not a list", http_status)
    return [e for e in errors if isinstance(e, str)]


def _report(message_id: str, entry: Mapping[str, Any], checked_at: datetime) -> Report:
    raw_status: str = entry["status"]
    phone = entry.get("phoneNumber")
    unparsed: dict[str, str] = {}
    submitted_at = read_time(entry, "createdAt", unparsed)
    return Report.from_outcome(
        PROVIDER,
        message_id,
        classify(raw_status),
        ProviderStatus(raw_status),
        submitted_at=submitted_at,
        recipient=phone if isinstance(phone, str) and phone else None,
        checked_at=checked_at,
        details={"unparsed": unparsed} if unparsed else None,
        # Not read: `text` (message content is never returned or logged) and `fromName` (a sender id can
        # itself be a phone number, and nothing downstream needs it).
    )


def _unanswered(message_id: str, description: str, checked_at: datetime, code: str = NOT_MENTIONED_CODE) -> Report:
    """Wooxy said nothing usable about this id: an error report (the lookup failed for this id, `details.error`),
    not an answer about the message, so the queue path asks again instead of storing it."""
    return replace(error_report(PROVIDER, message_id, ProviderError(str(PROVIDER), description, provider_code=code)), checked_at=checked_at)


def _mentions(message_id: str, text: str) -> bool:
    """Whether an error string names this id as a whole token ("5" is not in "for 15 ids")."""
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(message_id)}(?![0-9A-Za-z])", text) is not None


def parse_response(
    ids: Sequence[str],
    body: bytes | Mapping[str, Any],
    http_status: int,
    checked_at: datetime | None = None,
    *,
    access_token: str | None = None,
) -> list[Report]:
    """One report per requested id, in the order given, from one `/v3/sms/info` answer.

    Raises ProviderAuthError / ProviderUnavailable / ProviderError for a failed call (`result: false`)
    and ProviderError for a body we cannot read. `access_token`, when given, is blanked out of any
    error text that echoes it.
    """
    checked_at = checked_at or utcnow()
    payload = _decode(body, http_status)
    result = payload.get("result")
    if not isinstance(result, bool):
        raise _shape_error("no boolean `result`", http_status)
    errors = [classify_error(e, access_token) for e in _read_errors(payload, http_status)]

    if result is False:
        # [INF] A result:false whose only errors are "SMS <id> not found" is still per-id answers
        # (a backend may report "nothing found" as a failed call); anything else fails the call.
        if not errors or any(e.kind is not ErrorKind.NOT_FOUND for e in errors):
            raise _method_failure(errors, http_status)
        data: object = payload.get("data") or {}
    else:
        if "data" not in payload:
            raise _shape_error("result:true but no `data`", http_status)
        data = payload["data"]

    answer = _read_data(data, http_status)
    for error in errors:
        if error.kind is ErrorKind.NOT_FOUND and error.id is not None:
            answer.not_found.add(error.id, error.text)
        else:
            answer.other_errors.append(error.text)

    reports: list[Report] = []
    for message_id in ids:
        found, entry = _entry_for(answer, message_id)
        said_not_found, text = answer.not_found.find(message_id)
        if isinstance(entry, _Unreadable):
            reports.append(_unanswered(message_id, entry.why, checked_at, UNREADABLE_ENTRY_CODE))
        elif found and entry is not None:
            reports.append(_report(message_id, entry, checked_at))
        elif found or said_not_found:  # a null entry, or "SMS <id> not found"
            reports.append(not_found(PROVIDER, message_id, NOT_FOUND_CODE, text or "null entry in data", checked_at=checked_at))
        elif mentions := [text for text in answer.other_errors if _mentions(message_id, text)]:
            reports.append(_unanswered(message_id, "; ".join(mentions), checked_at, UNKNOWN_ERROR_CODE))
        else:
            reports.append(_unanswered(message_id, "wooxy did not mention this id in data or errors", checked_at))
    return reports


# ---- the client ----------------------------------------------------------------------------------
def validate_ids(ids: Sequence[str]) -> list[str]:
    """Distinct ids, first occurrence order kept; InvalidRequest before any request is sent."""
    if isinstance(ids, str | bytes) or not isinstance(ids, Sequence):
        raise InvalidRequest("ids must be a list of strings")
    return list(dict.fromkeys(check_keys(list(ids), "ids", None))) if ids else []  # none: nothing to send


class WooxyClient:
    def __init__(self, http: HttpClient, base_url: str, credentials: WooxyCredentials) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + INFO_PATH
        self.credentials = credentials

    def statuses(self, ids: Sequence[str]) -> list[Report]:
        """One report per distinct id, in request order: one request of at most MAX_IDS_PER_REQUEST ids (more are
        chunked by the caller, `services.WooxyService`)."""
        distinct = validate_ids(ids)
        if len(distinct) > MAX_IDS_PER_REQUEST:
            raise InvalidRequest(f"Wooxy answers at most {MAX_IDS_PER_REQUEST} ids a request")
        return self._fetch(distinct) if distinct else []

    def status(self, message_id: str) -> Report:
        return self.statuses([message_id])[0]

    def _fetch(self, chunk: list[str]) -> list[Report]:
        response = self.http.send(
            "POST",
            self.url,
            headers={
                "Access-Token": self.credentials.access_token,
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            body=json.dumps({"ids": chunk}).encode(),
        )
        return parse_response(chunk, response.body, response.status, utcnow(), access_token=self.credentials.access_token)

"""The one validator of what callers send: a request body, a list of ids, one id. One set of messages.

Every entry point uses it: the batch routes and the bulk routes (`parse_id_body`), a single-id route or a lookup
(`check_key`), the Wooxy client and the queue path's message parser (`check_keys`). Provider-specific rules
(an OpenMarket ticket has at most 64 characters, a WWT id is decimal digits) are checked after these, by each
provider.

An id (or WWT reference) is a string of 1 to 128 characters that is not only whitespace and holds no control
characters (C0, DEL, C1) and no lone surrogate (which no provider request, table or file could carry).
api/openapi.yaml says the same with `KEY_PATTERN` (tested).

Errors are `InvalidRequest` (400 `invalid_request`). A message may repeat field names the caller sent (cut
short), never an id: ids are the caller's data, and positions say which ones are wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import InvalidRequest

MAX_KEY_LENGTH = 128
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The same rule as a JSON Schema pattern (api/openapi.yaml, with maxLength 128): no forbidden character, and at
# least one that is not whitespace. (Lone surrogates cannot be written in a URL or in UTF-8 JSON at all.)
KEY_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
MAX_POSITIONS = 100  # bad positions listed in an error's details (the message shows the first 10)


def is_key(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_KEY_LENGTH and bool(value.strip()) and not _FORBIDDEN.search(value)


def key_rule(noun: str) -> str:
    return f"each {noun} must be a non-empty string of at most {MAX_KEY_LENGTH} characters, without control characters"


def check_key(value: object, noun: str = "id") -> str:
    """One id (a path parameter, or one key of a lookup)."""
    if not is_key(value):
        raise InvalidRequest(key_rule(noun))
    return value  # type: ignore[return-value]  # is_key: a str


def check_keys(values: object, field: str, limit: int | None, convert: Callable[[object], object] | None = None) -> list[str]:
    """A list of ids as given (duplicates kept: callers answer each distinct id once), 1 to `limit` of them
    (None: no upper bound). `convert` turns an item into its key first (WWT ids may be JSON integers)."""
    noun = "reference" if field == "references" else "id"
    count = len(values) if isinstance(values, list) else None
    if count is None or count == 0 or (limit is not None and count > limit):
        most = f"1 to {limit}" if limit is not None else "at least 1"
        got = f", got {count}" if count is not None else ""
        raise InvalidRequest(f"{field} must be an array of {most} strings{got}", {"max": limit, "count": count})
    keys = [convert(value) for value in values] if convert else list(values)  # type: ignore[arg-type]  # a list
    bad = [position for position, key in enumerate(keys) if not is_key(key)]
    if bad:
        raise InvalidRequest(f"{key_rule(noun)} (bad positions: {bad[:10]})", {"positions": bad[:MAX_POSITIONS]})
    return keys  # type: ignore[return-value]  # all checked by is_key


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity, -Infinity: Python's json takes them, JSON does not


def parse_json(raw: str | bytes | None, expected: str) -> Any:
    """A request body as JSON: UTF-8, standard JSON only (no NaN/Infinity), nesting within Python's limit."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(f"the body must be UTF-8 JSON: {expected}") from None
    try:
        return json.loads(raw or "", parse_constant=_no_constant)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the interpreter's stack
        raise InvalidRequest(f"the body must be JSON: {expected}") from None


def _names(names: list[str]) -> str:
    shown = [name if len(name) <= 32 else name[:32] + "..." for name in names[:5]]
    return ", ".join(json.dumps(name) for name in shown) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


Convert = Callable[[str, object], object]  # (kind, item) -> key


def id_body(body: object, fields: Mapping[str, str], limit: int, convert: Convert | None = None) -> tuple[str, str, list[str]]:
    """A body `{<field>: [...]}` with exactly one of `fields` (field -> kind) and nothing else:
    (field, kind, keys as given). `convert(kind, item)` makes an item its key first (see `check_keys`)."""
    expected = " or ".join(f'{{"{field}": [...]}}' for field in fields)
    if not isinstance(body, dict):
        raise InvalidRequest(f"the body must be a JSON object: {expected}")
    unknown = sorted(str(name) for name in body if name not in fields)
    if unknown:
        raise InvalidRequest(f"unknown field(s): {_names(unknown)}; expected {expected}")
    present = [field for field in fields if field in body]
    if len(present) != 1:
        raise InvalidRequest(f"the body must hold exactly one of: {expected}")
    field = present[0]
    kind = fields[field]
    return field, kind, check_keys(body[field], field, limit, (lambda item: convert(kind, item)) if convert else None)


def parse_id_body(
    raw: str | bytes | None, fields: Mapping[str, str], limit: int, convert: Convert | None = None
) -> tuple[str, str, list[str]]:
    """`id_body` of a raw request body."""
    expected = " or ".join(f'{{"{field}": [...]}}' for field in fields)
    return id_body(parse_json(raw, expected), fields, limit, convert)

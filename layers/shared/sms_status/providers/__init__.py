"""The provider clients. What they share about reading an answer is here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..model import parse_provider_time

UNPARSED_TEXT_MAX = 64  # what of an unreadable value is kept for a reader (a bounded echo, never a body)


def read_time(fields: dict[str, Any], name: str, unparsed: dict[str, str]) -> datetime | None:
    """A provider time (`YYYY-MM-DD HH:MM:SS`, UTC) from `fields[name]`. A value that is present but not a time is
    not silently dropped: the report's time stays null and the value, as sent, goes into `unparsed[name]`
    (reported under `details.unparsed`) so a reader can see the provider sent something."""
    value = fields.get(name)
    parsed = parse_provider_time(value)
    if parsed is None and value is not None and value != "":
        unparsed[name] = (value if isinstance(value, str) else repr(value))[:UNPARSED_TEXT_MAX]
    return parsed

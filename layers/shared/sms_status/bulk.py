"""The Wooxy function's two actions for the bulk state machine (statemachine/wooxy_bulk.asl.json).

- `{"bulk_validate": {"ids": [...]}}` -> `{"ids": [distinct ids, request order]}`: the whole input is checked
  before any provider request, and a bad one raises InvalidRequest (the execution then fails with that error
  name, which the API mapping turns into a 400). Done here rather than in ASL because JSONPath ASL cannot check
  each of 10,000 elements without a 10,000-iteration Map, and because the rules are the ones POST /wooxy/status
  uses (one definition of a valid id).
- `{"bulk_chunk": [<= 100 ids]}` -> `{"results": [report dicts]}`: one Wooxy request. Provider failures are
  raised, not turned into error reports here, named by their pinned error code (`named_by_code`), so the
  state machine's Retry/Catch match provider_unavailable, provider_timeout, ... and its Catch writes the error
  reports once retries are spent.

Ids are never logged (only counts): they are the caller's data.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidRequest, ServiceError
from .lookup import MAX_BATCH, MAX_KEY_LENGTH, distinct
from .model import Provider
from .observability import logger
from .services import look_up

MAX_BULK_IDS = 10_000  # pinned: POST /wooxy/status/bulk takes up to 10,000 ids
BULK_PROVIDERS = frozenset({Provider.WOOXY})  # only Wooxy takes 100 ids per request


def validate_bulk_input(payload: object) -> list[str]:
    """The distinct ids of a bulk request `{"ids": [...]}`, in request order; InvalidRequest when malformed."""
    if not isinstance(payload, dict):
        raise InvalidRequest('the body must be a JSON object: {"ids": [...]}')
    unknown = sorted(str(key) for key in payload if key != "ids")
    if unknown:
        raise InvalidRequest(f'unknown field(s): {", ".join(unknown)}; expected {{"ids": [...]}}')
    ids = payload.get("ids")
    if not isinstance(ids, list):
        raise InvalidRequest("ids must be an array of strings")
    if not 1 <= len(ids) <= MAX_BULK_IDS:
        raise InvalidRequest(f"ids must hold 1 to {MAX_BULK_IDS} ids, got {len(ids)}", {"max": MAX_BULK_IDS, "count": len(ids)})
    bad = [index for index, key in enumerate(ids) if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH]
    if bad:
        raise InvalidRequest(
            f"each id must be a non-empty string of at most {MAX_KEY_LENGTH} characters (bad positions: {bad[:10]})",
            {"positions": bad[:100]},
        )
    return distinct(ids)


def lookup_chunk(provider: Provider, ids: object) -> dict[str, Any]:
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_BATCH:
        # Only the state machine sends chunks, after validation: this is a wiring bug, not caller input.
        raise InvalidRequest(f"bulk_chunk must be an array of 1 to {MAX_BATCH} ids")
    return {"results": [report.to_dict() for report in look_up(provider, ids, via="bulk")]}


def named_by_code(error: ServiceError) -> Exception:
    """The same failure as an exception whose class name is the pinned error code (provider_unavailable, ...).

    Step Functions names a Lambda error after its exception class; so named, the state machine's Retry/Catch
    and the error reports of a failed chunk use the codes POST /wooxy/status would have answered with.
    """
    return type(error.code, (Exception,), {})(error.message)


def handle_chunk(provider: Provider, event: dict[str, Any]) -> dict[str, Any]:
    """Entry point from `dispatch` for the state machine's events (see the module docstring)."""
    if provider not in BULK_PROVIDERS:
        raise InvalidRequest(f"bulk lookups are not offered for {provider}")
    if "bulk_validate" in event:
        ids = validate_bulk_input(event["bulk_validate"])  # InvalidRequest: the Fail state the API maps to 400
        logger.info("bulk request validated", extra={"provider": str(provider), "count": len(ids)})
        return {"ids": ids}
    try:
        return lookup_chunk(provider, event.get("bulk_chunk"))
    except ServiceError as error:
        raise named_by_code(error) from error

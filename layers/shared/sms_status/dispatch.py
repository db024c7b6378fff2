"""One Lambda per provider receives three kinds of events; this is where they part ways.

- API Gateway REST proxy events -> the provider's routes (`api.create_app`).
- SQS batches from the provider's tracking queue -> `tracking.handle_batch` (the queue path).
- The Wooxy bulk state machine's `{"bulk_validate": {...}}` and `{"bulk_chunk": [ids]}` -> `bulk.handle_chunk`.
All three run in the same function on purpose: Wooxy's stack-wide limit of 10 concurrent requests is
enforced by that one function's reserved concurrency.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from .model import Provider


def is_sqs_batch(event: dict[str, Any]) -> bool:
    records = event.get("Records")
    return isinstance(records, list) and bool(records) and records[0].get("eventSource") == "aws:sqs"


def dispatch(provider: Provider, app: APIGatewayRestResolver, event: dict[str, Any], context: Any) -> Any:
    if is_sqs_batch(event):
        from .tracking import handle_batch

        return handle_batch(provider, event, context)
    if "bulk_chunk" in event or "bulk_validate" in event:
        from .bulk import handle_chunk

        return handle_chunk(provider, event)
    return app.resolve(event, context)

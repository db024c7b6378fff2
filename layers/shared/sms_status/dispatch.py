"""One Lambda per provider receives three kinds of events; this is where they part ways.

- API Gateway REST proxy events -> the provider's routes (`api.create_app`).
- SQS batches from the provider's tracking queue -> `tracking.handle_batch` (the queue path).
- The Wooxy bulk state machine's chunks `{"bulk_chunk": {job_id, index, ids}}` -> `jobs.run_chunk`.
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
    if "bulk_chunk" in event:
        from .errors import InvalidRequest
        from .jobs import run_chunk
        from .services import look_up

        if provider is not Provider.WOOXY:  # only Wooxy takes 100 ids a request
            raise InvalidRequest(f"bulk lookups are not offered for {provider}")
        return run_chunk(event["bulk_chunk"], lambda ids: look_up(provider, ids, via="bulk"))
    return app.resolve(event, context)

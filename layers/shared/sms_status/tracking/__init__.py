"""The queue path: senders enqueue message ids, the provider's tracking function follows each one until it is final
(docs/queue.md). `messages` is the message format, `rules` every decision (no I/O), `shell` the I/O around them;
this module is the Lambda entry point and builds the tracker once per container from the environment."""

from __future__ import annotations

from functools import cache
from typing import Any

from ..config import ConfigError, TrackingConfig
from ..errors import ServiceError
from ..model import Provider
from .messages import MalformedMessage, TrackRequest, parse_message
from .shell import RecheckQueue, Tracker, chain_of, count_final

__all__ = [
    "MalformedMessage",
    "RecheckQueue",
    "TrackRequest",
    "Tracker",
    "chain_of",
    "count_final",
    "handle_batch",
    "parse_message",
    "reset_trackers",
    "tracker_for",
]


@cache
def tracker_for(provider: Provider) -> Tracker:
    """Built once per container (a cold start) from the environment."""
    from ..publish import EventPublisher
    from ..services import service_for
    from ..store import StatusStore

    try:
        config = TrackingConfig.from_env()
    except ConfigError as exc:
        raise ServiceError(f"configuration error: {exc}") from exc
    return Tracker(
        provider,
        service_for(provider),
        StatusStore.from_name(config.table_name),
        EventPublisher.from_name(config.event_bus_name),
        RecheckQueue.from_url(config.recheck_queue_url),
        config.query_window,
        recheck_delays=config.recheck_delays,
        recheck_queue_arn=config.recheck_queue_arn,
    )


def reset_trackers() -> None:
    """Forget built trackers (tests change the environment between cases)."""
    tracker_for.cache_clear()


def handle_batch(provider: Provider, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An SQS batch from the provider's tracking or re-check queue; only the failed records are reported back
    (ReportBatchItemFailures)."""
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    records = [SQSRecord(raw) for raw in event.get("Records") or []]
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    failed = tracker_for(provider).handle(records, (lambda: remaining_ms() / 1000) if remaining_ms else None)
    return {"batchItemFailures": [{"itemIdentifier": record.message_id} for record in records if record.message_id in failed]}

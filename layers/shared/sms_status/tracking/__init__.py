"""The queue path: senders enqueue message ids, the provider's tracking function follows each one until it is final
(docs/queue.md). `messages` is the message format, `rules` every decision (no I/O), `shell` the I/O around them;
this module builds a tracking function's tracker from its settings and hands it each batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..config import TrackingConfig
from ..model import Provider
from ..publish import EventPublisher
from ..services import provider_service
from ..store import StatusStore
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
    "provider_tracker",
]


def provider_tracker(provider: Provider, env: Mapping[str, str]) -> Tracker:
    """The tracker a tracking function uses while its container is warm (functions/*_tracking/app.py keep it)."""
    config = TrackingConfig.from_env(env)
    return Tracker(
        provider,
        provider_service(provider, env),
        StatusStore.from_name(config.table_name),
        EventPublisher.from_name(config.event_bus_name),
        RecheckQueue.from_url(config.recheck_queue_url),
        config.query_window,
        recheck_delays=config.recheck_delays,
        recheck_queue_arn=config.recheck_queue_arn,
    )


def handle_batch(tracker: Tracker, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An SQS batch from the provider's tracking or re-check queue; only the failed records are reported back
    (ReportBatchItemFailures)."""
    records = [SQSRecord(raw) for raw in event.get("Records") or []]
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    failed = tracker.handle(records, (lambda: remaining_ms() / 1000) if remaining_ms else None)
    return {"batchItemFailures": [{"itemIdentifier": record.message_id} for record in records if record.message_id in failed]}

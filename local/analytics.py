"""`GET /_local/analytics`: the dashboard's delivery analytics for what the local run tracked.

Deployed, these figures are CloudWatch metrics (FinalOutcomes, TimeToFinal, emitted when a tracked message
becomes final; docs/operations.md). Locally there is no CloudWatch, so the same figures are computed from the
status table itself: every tracked message, its final status, and the time from the provider's submit time
(else when tracking started) to its first final answer, the last entry of its history.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sms_status.model import parse_iso
from sms_status.store import StatusStore, Tracked


def tracked_messages(store: StatusStore) -> Iterator[Tracked]:
    """Every tracked message: a Scan of the whole table. The local run's only: no deployed role may scan."""
    pages: dict[str, Any] = {}
    while True:
        page = store.client.scan(TableName=store.table_name, **pages)
        yield from (store.decode(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return
        pages["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def time_to_final(item: Tracked) -> float | None:
    if item.report is None or not item.report.final or not item.history:
        return None
    reached: datetime | None = parse_iso(item.history[-1].at)
    if reached is None:
        return None
    start = min(item.report.submitted_at or item.tracked_since, item.tracked_since)
    return max(0.0, (reached - start).total_seconds())


def delivery_analytics(items: Iterable[Tracked]) -> dict[str, Any]:
    """Per provider: messages tracked, still open, final per status, delivery rate, time to final p50/p90/p99."""
    by_provider: dict[str, list[Tracked]] = defaultdict(list)
    for item in items:
        by_provider[str(item.key.provider)].append(item)
    providers = {}
    for provider, tracked in sorted(by_provider.items()):
        final = [item for item in tracked if item.final]
        outcomes = Counter(str(item.report.status) for item in final if item.report)
        seconds = [value for value in map(time_to_final, final) if value is not None]
        providers[provider] = {
            "tracked": len(tracked),
            "open": len(tracked) - len(final),
            "final": dict(sorted(outcomes.items())),
            "delivery_rate": round(outcomes["delivered"] / len(final), 4) if final else None,
            "time_to_final_seconds": {name: percentile(seconds, q) for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))},
        }
    return {"providers": providers, "note": "the deployed dashboard's FinalOutcomes and TimeToFinal, from the local status table"}

"""The local delivery analytics (GET /_local/analytics), computed from tracked items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from local.analytics import delivery_analytics, percentile
from sms_status.model import Provider, ProviderStatus, Report, Status, iso
from sms_status.store import HistoryEntry, Tracked, TrackKey

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


def item(provider: Provider, key: str, status: Status, final: bool, final_after: float | None, submitted: float | None = None) -> Tracked:
    report = Report(
        provider,
        key,
        status,
        final,
        ProviderStatus(str(status), None),
        submitted_at=T0 + timedelta(seconds=submitted) if submitted else None,
    )
    history = [HistoryEntry("pending", "queued", iso(T0) or "")]
    if final_after is not None:
        history.append(HistoryEntry(str(status), str(status), iso(T0 + timedelta(seconds=final_after)) or ""))
    return Tracked(key=TrackKey(provider, "id", key), report=report, tracked_since=T0, history=tuple(history))


def test_percentile_is_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.99) == 5.0
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.9), percentile(values, 0.99)) == (50.0, 90.0, 99.0)


def test_analytics_per_provider():
    items = [
        item(Provider.WOOXY, "a", Status.DELIVERED, True, 30),
        item(Provider.WOOXY, "b", Status.DELIVERED, True, 90, submitted=-30),  # from the provider's submit time: 120 s
        item(Provider.WOOXY, "c", Status.UNDELIVERED, True, 60),
        item(Provider.WOOXY, "d", Status.SENT, False, None),
        item(Provider.WWT, "e", Status.PENDING, False, None),
    ]
    analytics = delivery_analytics(items)["providers"]
    assert analytics["wooxy"] == {
        "tracked": 4,
        "open": 1,
        "final": {"delivered": 2, "undelivered": 1},
        "delivery_rate": round(2 / 3, 4),
        "time_to_final_seconds": {"p50": 60.0, "p90": 120.0, "p99": 120.0},
    }
    assert analytics["wwt"]["delivery_rate"] is None
    assert analytics["wwt"]["time_to_final_seconds"] == {"p50": None, "p90": None, "p99": None}
    assert "openmarket" not in analytics

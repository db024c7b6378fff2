"""Metrics: only declared ones are emitted, with their dimensions; delivery analytics of a message made final."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sms_status.model import Provider, ProviderStatus, Report, Status
from sms_status.observability import METRICS, emit
from sms_status.store import Tracked, TrackKey
from sms_status.tracking import count_final

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


def emitted(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]


def test_an_undeclared_metric_or_dimension_is_refused():
    with pytest.raises(KeyError):
        emit("Deliveries", 1, provider="wooxy")
    with pytest.raises(ValueError, match="takes dimensions"):
        emit("Lookups", 1, provider="wooxy")  # status missing
    with pytest.raises(ValueError, match="takes dimensions"):
        emit("LookupIds", 1, provider="wooxy", id="5d91537bd132fdf45916520a")  # never a dimension per message


def test_a_declared_metric_is_one_emf_document_with_its_dimensions(capsys):
    emit("Lookups", 3, provider="wwt", status="delivered")
    (document,) = emitted(capsys)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Metrics"] == [{"Name": "Lookups", "Unit": "Count"}]
    assert set(directive["Dimensions"][0]) == {"provider", "status", "service"}
    assert (document["provider"], document["status"], document["Lookups"]) == ("wwt", "delivered", [3.0])


def final_item(submitted_at: datetime | None, tracked_since: datetime, status: Status = Status.DELIVERED) -> Tracked:
    report = Report(Provider.WOOXY, "m1", status, True, ProviderStatus(str(status), None), submitted_at=submitted_at, checked_at=T0)
    return Tracked(key=TrackKey(Provider.WOOXY, "id", "m1"), report=report, tracked_since=tracked_since, history=())


@pytest.mark.parametrize(
    ("submitted_at", "tracked_since", "seconds"),
    [
        (T0 - timedelta(seconds=100), T0 - timedelta(seconds=95), 100.0),  # from the provider's submit time
        (None, T0 - timedelta(seconds=95), 95.0),  # no submit time: from when tracking started
        (T0 + timedelta(days=400), T0 - timedelta(seconds=95), 95.0),  # an absurd future submit time is not believed
    ],
)
def test_time_to_final_counts_from_submit_else_tracking_start(capsys, submitted_at, tracked_since, seconds):
    count_final(final_item(submitted_at, tracked_since), T0)
    documents = emitted(capsys)
    assert [(d["provider"], d["status"], d["FinalOutcomes"]) for d in documents if "FinalOutcomes" in d] == [("wooxy", "delivered", [1.0])]
    assert [d["TimeToFinal"] for d in documents if "TimeToFinal" in d] == [[seconds]]


def test_every_declared_metric_names_a_unit_and_no_per_message_dimension():
    for name, spec in METRICS.items():
        assert spec.unit, name
        assert set(spec.dimensions) <= {"provider", "status"}, name

"""The status table adapter against moto DynamoDB: conditional writes under concurrency, and the outbox."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from sms_status.model import Provider, ProviderStatus, Report, Status
from sms_status.store import StatusStore, StoreConflict, TrackKey, apply_report

KEY = TrackKey(Provider.WWT, "reference", "ext19")
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def report(status: Status, final: bool = False, at: int = 0) -> Report:
    return Report(Provider.WWT, "ext19", status, final, ProviderStatus(str(status)), checked_at=T0 + timedelta(seconds=at))


@pytest.fixture
def store():
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName="status",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield StatusStore(boto3.client("dynamodb"), "status")


def applying(new: Report, changes: list[bool]):
    def change(current):
        applied = apply_report(current, new, key=KEY, tracked_since=T0)
        if applied is None:
            changes.append(False)
            return None
        changes.append(applied.changed)
        return applied.item

    return change


def test_items_round_trip_with_history_context_and_outbox(store) -> None:
    def first(current):
        item = apply_report(current, report(Status.PENDING), key=KEY, tracked_since=T0).item
        return replace(item, context={"price": 0.1}, outbox=({"event_id": "e1"},))

    written = store.update(KEY, first)
    assert written.version == 1
    read = store.get(KEY)
    assert read == written
    assert read.context == {"price": 0.1}  # floats survive (JSON text, not DynamoDB numbers)
    assert store.get_many([KEY, TrackKey(Provider.WWT, "id", "ext19")]) == {KEY: written}


def test_a_concurrent_writer_makes_the_other_decide_again_on_what_it_wrote(store) -> None:
    store.update(KEY, applying(report(Status.PENDING), []))
    changes: list[bool] = []
    raced = False

    def slow_sent(current):
        nonlocal raced
        if not raced:  # another invocation stores "delivered" between our read and our write
            raced = True
            store.update(KEY, applying(report(Status.DELIVERED, final=True, at=5), []))
        return applying(report(Status.SENT, at=10), changes)(current)

    assert store.update(KEY, slow_sent) is None
    assert changes == [True, False]  # first decided on "pending" (a change), then on "delivered" (ignored)
    item = store.get(KEY)
    assert item.report.status is Status.DELIVERED
    assert item.version == 2


def test_a_writer_that_never_wins_gives_up_loudly(store) -> None:
    store.update(KEY, applying(report(Status.PENDING), []))

    def always_raced(current):
        store.update(KEY, lambda c: replace(c))  # an unchanged write still bumps the version
        return current

    with pytest.raises(StoreConflict):
        store.update(KEY, always_raced)

"""Tracking message parsing, the re-check schedule and the configuration: pure, no AWS, no network."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sms_status.config import ConfigError
from sms_status.services import OpenMarketService, WooxyService, WwtService
from sms_status.tracking import (
    MAX_CONTEXT_BYTES,
    MalformedMessage,
    TrackingConfig,
    parse_message,
)
from sms_status.tracking_rules import SQS_MAX_DELAY, TrackRequest, recheck_interval, sqs_delay

WWT = WwtService(secrets=None, make_client=None)
WOOXY = WooxyService(secrets=None, make_client=None)
OPENMARKET = OpenMarketService(secrets=None, make_client=None)


def test_a_sender_message_with_context() -> None:
    request = parse_message(json.dumps({"ids": ["a1", "b2", "a1"], "context": {"order": 1}}), WOOXY)
    assert request == TrackRequest(kind="id", ids=("a1", "b2"), context={"order": 1})


def test_wwt_references_are_their_own_kind() -> None:
    assert parse_message('{"references": ["ext19"]}', WWT).kind == "reference"


def test_a_recheck_message_round_trips_on_the_recheck_queue_only() -> None:
    first = parse_message('{"ids": ["T-1"]}', OPENMARKET)
    later = TrackRequest(kind="id", ids=("T-1",), attempt=3, chain="abc", since=datetime(2026, 11, 29, tzinfo=UTC))
    assert parse_message(json.dumps(later.to_body()), OPENMARKET, internal=True) == later
    assert first.attempt == 0
    with pytest.raises(MalformedMessage, match="internal to the service's own re-checks"):
        parse_message(json.dumps(later.to_body()), OPENMARKET)  # the same body from a sender's queue


@pytest.mark.parametrize("field", ["attempt", "chain", "since", "not_before"])
def test_a_sender_cannot_write_internal_fields(field: str) -> None:
    body = {"ids": ["x"], field: {"attempt": 1, "chain": "c", "since": "2001-01-01T00:00:00Z", "not_before": "2001-01-01T00:00:00Z"}[field]}
    with pytest.raises(MalformedMessage, match=f"unknown field\\(s\\): {field} \\(internal"):
        parse_message(json.dumps(body), WOOXY)


@pytest.mark.parametrize(
    ("body", "service", "reason"),
    [
        ("not json", WOOXY, "must be JSON"),
        ("[1, 2]", WOOXY, "JSON object"),
        ('{"ids": ["a"], "text": "hello"}', WOOXY, "unknown field"),
        ("{}", WOOXY, "exactly one of"),
        ('{"ids": ["1"], "references": ["r"]}', WWT, "exactly one of"),
        ('{"references": ["r"]}', WOOXY, "cannot be tracked by references"),
        ('{"ids": "a"}', WOOXY, "array of 1 to 100"),
        ('{"ids": []}', WOOXY, "array of 1 to 100"),
        (json.dumps({"ids": [str(i) for i in range(101)]}), WOOXY, "array of 1 to 100"),
        ('{"ids": [7]}', WOOXY, "bad positions: [0]"),
        ('{"ids": ["ok", "   "]}', WOOXY, "bad positions: [1]"),  # only whitespace
        ('{"ids": ["a\\u0000b"]}', WOOXY, "without control characters"),
        ('{"ids": ["a"], "context": {"x": NaN}}', WOOXY, "must be JSON"),  # not JSON, and no event could carry it
        ('{"ids": ["12a"]}', WWT, "decimal digits"),
        ('{"references": ["has space"]}', WWT, "a-z"),
        ('{"ids": ["a"], "context": [1]}', WOOXY, "context must be a JSON object"),
        (json.dumps({"ids": ["a"], "context": {"x": "y" * MAX_CONTEXT_BYTES}}), WOOXY, "larger than"),
        ('{"ids": ["a"], "attempt": -1}', WOOXY, "attempt"),
        ('{"ids": ["a"], "attempt": true}', WOOXY, "attempt"),
        ('{"ids": ["a"], "since": "yesterday"}', WOOXY, "since"),
        ('{"ids": ["a"], "not_before": "2025-01-01T00:00:00"}', WOOXY, "not_before"),
    ],
)
def test_malformed_messages_say_why_without_their_content(body: str, service, reason: str) -> None:
    with pytest.raises(MalformedMessage) as caught:
        parse_message(body, service)
    assert reason in str(caught.value)
    assert "hello" not in str(caught.value)


def test_the_recheck_schedule_grows_and_caps() -> None:
    intervals = [recheck_interval(attempt) for attempt in range(12)]
    assert intervals[:3] == [30, 60, 120]
    assert intervals == sorted(intervals)
    assert intervals[-1] == 3600


def test_sqs_delays_are_capped_at_the_sqs_maximum() -> None:
    assert sqs_delay(timedelta(seconds=29.2)) == 30
    assert sqs_delay(timedelta(hours=1)) == SQS_MAX_DELAY
    assert sqs_delay(timedelta(seconds=-5)) == 0


def test_config_names_the_missing_variable_and_reads_the_window() -> None:
    env = {"STATUS_TABLE_NAME": "t", "EVENT_BUS_NAME": "b", "RECHECK_QUEUE_URL": "https://q", "RECHECK_QUEUE_ARN": "arn:q"}
    assert TrackingConfig.from_env(env).query_window == timedelta(hours=72)
    assert TrackingConfig.from_env({**env, "QUERY_WINDOW_HOURS": "5"}).query_window == timedelta(hours=5)
    with pytest.raises(ConfigError, match="EVENT_BUS_NAME"):
        TrackingConfig.from_env({"STATUS_TABLE_NAME": "t", "RECHECK_QUEUE_URL": "q", "RECHECK_QUEUE_ARN": "arn:q"})
    with pytest.raises(ConfigError, match="RECHECK_QUEUE_ARN"):
        TrackingConfig.from_env({"STATUS_TABLE_NAME": "t", "EVENT_BUS_NAME": "b", "RECHECK_QUEUE_URL": "q"})
    with pytest.raises(ConfigError, match="QUERY_WINDOW_HOURS"):
        TrackingConfig.from_env({**env, "QUERY_WINDOW_HOURS": "0"})


@pytest.mark.parametrize(
    ("name", "service", "malformed"),
    [
        ("openmarket.json", OPENMARKET, 0),
        ("wooxy.json", WOOXY, 0),
        ("wwt_references.json", WWT, 0),
        ("wwt_mixed_with_malformed.json", WWT, 2),
    ],
)
def test_the_sample_sqs_events_hold_what_their_names_say(name: str, service, malformed: int) -> None:
    from pathlib import Path

    event = json.loads((Path(__file__).resolve().parents[2] / "events" / "sqs" / name).read_text())
    failures = 0
    for record in event["Records"]:
        assert record["eventSource"] == "aws:sqs"
        try:
            parse_message(record["body"], service)
        except MalformedMessage:
            failures += 1
    assert failures == malformed


def test_wwt_ids_may_be_json_integers_on_the_queue_too() -> None:
    assert parse_message('{"ids": [211, "212"]}', WWT).ids == ("211", "212")


# ---- the re-check schedule is configurable (RECHECK_DELAYS) ------------------------------------------
def test_recheck_delays_come_from_the_environment_and_the_last_repeats() -> None:
    from sms_status.config import DEFAULT_RECHECK_DELAYS, parse_recheck_delays

    assert parse_recheck_delays("") == DEFAULT_RECHECK_DELAYS == (30, 60, 120, 240, 480, 900, 1800, 3600)
    delays = parse_recheck_delays("1,1,2")
    assert [recheck_interval(attempt, delays) for attempt in range(5)] == [1, 1, 2, 2, 2]
    env = {"STATUS_TABLE_NAME": "t", "EVENT_BUS_NAME": "b", "RECHECK_QUEUE_URL": "q", "RECHECK_QUEUE_ARN": "a", "RECHECK_DELAYS": "5, 10"}
    assert TrackingConfig.from_env(env).recheck_delays == (5, 10)


@pytest.mark.parametrize("raw", ["a", "1,,2", "0", "-5", "43201", "1.5"])
def test_bad_recheck_delays_are_a_configuration_error(raw: str) -> None:
    from sms_status.config import parse_recheck_delays

    with pytest.raises(ConfigError, match="RECHECK_DELAYS"):
        parse_recheck_delays(raw)

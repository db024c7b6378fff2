"""Tracking messages (tracking/messages.py) and the queue path's configuration: pure, no AWS, no network.

Expected values come from the contract (docs/queue.md "Message schema"): 1-100 ids, a context of at most 4096
bytes, the internal fields only on the re-check queue, one chain of at most 64 characters per id.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sms_status.config import ConfigError, TrackingConfig
from sms_status.services import OpenMarketService, WooxyService, WwtService
from sms_status.tracking.messages import MalformedMessage, TrackRequest, parse_message

WWT = WwtService(secrets=None, make_client=None)
WOOXY = WooxyService(secrets=None, make_client=None)
OPENMARKET = OpenMarketService(secrets=None, make_client=None)
SINCE = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
ID_RULE = "each id must be a non-empty string of at most 128 characters, without control characters"


def recheck(body: dict, service=WOOXY) -> TrackRequest:
    return parse_message(json.dumps(body), service, internal=True)


def reason(body: str | bytes, service=WOOXY, *, internal: bool = False) -> str:
    with pytest.raises(MalformedMessage) as caught:
        parse_message(body, service, internal=internal)
    return str(caught.value)


# ---- a sender's message --------------------------------------------------------------------------------
def test_a_sender_message_with_context() -> None:
    request = parse_message(json.dumps({"ids": ["a1", "b2", "a1"], "context": {"order": 1}}), WOOXY)
    assert request == TrackRequest(kind="id", ids=("a1", "b2"), context={"order": 1})
    assert (request.attempt, request.chains, request.since, request.not_before) == (0, None, None, None)
    assert request.chain_of(0) is None  # a sender's message names no chain


def test_wwt_references_are_their_own_kind() -> None:
    assert parse_message('{"references": ["ext19"]}', WWT) == TrackRequest(kind="reference", ids=("ext19",))


def test_wwt_ids_may_be_json_integers_on_the_queue_too() -> None:
    assert parse_message('{"ids": [211, "212"]}', WWT).ids == ("211", "212")
    # Only WWT ids are numbers: a Wooxy id given as a number is not a string, so it is bad.
    assert reason('{"ids": [211]}', WOOXY) == f"{ID_RULE} (bad positions: [0])"


def test_a_hundred_ids_are_one_message() -> None:
    ids = [str(i) for i in range(100)]
    assert parse_message(json.dumps({"ids": ids}), WOOXY).ids == tuple(ids)


def test_a_context_of_exactly_4096_bytes_is_taken() -> None:
    # Measured as stored: serialized without spaces (two keys: the separators count), non-ASCII escaped.
    context = {"a": "x" * 4081, "b": ""}
    assert len(json.dumps(context, separators=(",", ":"))) == 4096
    assert parse_message(json.dumps({"ids": ["a"], "context": context}), WOOXY).context == context
    longer = {"a": "x" * 4081, "b": "y"}
    assert reason(json.dumps({"ids": ["a"], "context": longer})) == "context is larger than 4096 bytes"
    # 682 characters, written as 682 six-byte escapes
    assert reason(json.dumps({"ids": ["a"], "context": {"a": "é" * 682}})) == "context is larger than 4096 bytes"


def test_an_empty_context_is_kept() -> None:
    assert parse_message('{"ids": ["a"], "context": {}}', WOOXY).context == {}


# ---- the re-check queue's own messages ---------------------------------------------------------------------
def test_a_recheck_message_with_chains_round_trips_on_the_recheck_queue_only() -> None:
    later = TrackRequest(kind="id", ids=("T-1", "T-2"), context={"o": 1}, attempt=3, chains=("c1", "c2"), since=SINCE, not_before=LATER)
    body = json.dumps(later.to_body())
    assert parse_message(body, OPENMARKET, internal=True) == later
    assert (later.chain_of(0), later.chain_of(1)) == ("c1", "c2")
    assert reason(body, OPENMARKET) == (
        "unknown field(s): attempt, chains, not_before, since (internal to the service's own re-checks)"
    )  # the same body from a sender's queue


def test_the_message_body_names_every_field() -> None:
    request = TrackRequest("reference", ("r1", "r2"), context={"o": 1}, attempt=2, chains=("c", "d"), since=SINCE, not_before=LATER)
    assert request.to_body() == {
        "references": ["r1", "r2"],
        "attempt": 2,
        "context": {"o": 1},
        "chains": ["c", "d"],
        "since": "2026-11-29T09:00:00Z",
        "not_before": "2026-11-29T10:00:00Z",
    }
    assert TrackRequest("id", ("m1",)).to_body() == {"ids": ["m1"], "attempt": 0}


def test_a_message_with_the_older_single_chain_gives_every_id_that_chain() -> None:
    request = recheck({"ids": ["a", "b"], "attempt": 2, "chain": "old-chain", "since": "2026-11-29T09:00:00Z"})
    assert request == TrackRequest(kind="id", ids=("a", "b"), attempt=2, chains=("old-chain", "old-chain"), since=SINCE)
    assert request.chain_of(1) == "old-chain"


def test_duplicate_ids_collapse_to_the_first_with_its_chain() -> None:
    request = recheck({"ids": ["a", "b", "a", "c", "b"], "chains": ["c1", "c2", "c3", "c4", "c5"]})
    assert (request.ids, request.chains) == (("a", "b", "c"), ("c1", "c2", "c4"))


def test_a_recheck_without_chains_has_none() -> None:
    # a publish-later message (tracking/rules.py `publish_later`) carries no chain
    assert recheck({"ids": ["a"], "attempt": 1}) == TrackRequest(kind="id", ids=("a",), attempt=1)


@pytest.mark.parametrize(
    ("chains", "accepted"),
    [
        (["x" * 64], True),  # the longest chain
        (["x"], True),
        (["x" * 65], False),
        ([""], False),
        ([7], False),
        ([None], False),
        ("c1", False),  # not a list
        ([], False),  # one per id
        (["c1", "c2"], False),
    ],
)
def test_chains_are_short_strings_one_per_id(chains, accepted: bool) -> None:
    body = {"ids": ["a"], "chains": chains}
    if accepted:
        assert recheck(body).chains == tuple(chains)
    else:
        assert reason(json.dumps(body), internal=True) == "chains must be a list of short strings, one per id"


def test_one_bad_chain_among_good_ones_is_malformed() -> None:
    body = {"ids": ["a", "b", "c"], "chains": ["c1", "x" * 65, "c3"]}
    assert reason(json.dumps(body), internal=True) == "chains must be a list of short strings, one per id"


@pytest.mark.parametrize("chain", ["", "x" * 65, 7, ["c"]])
def test_the_older_chain_must_be_a_short_string(chain) -> None:
    assert reason(json.dumps({"ids": ["a"], "chain": chain}), internal=True) == "chain must be a short string"


def test_the_older_chain_may_be_64_characters() -> None:
    assert recheck({"ids": ["a"], "chain": "x" * 64}).chains == ("x" * 64,)


def test_chain_and_chains_together_are_malformed() -> None:
    body = {"ids": ["a"], "chain": "c1", "chains": ["c1"]}
    assert reason(json.dumps(body), internal=True) == "a re-check carries chain or chains, not both"


@pytest.mark.parametrize(
    ("attempt", "accepted"), [(0, True), (100_000, True), (100_001, False), (-1, False), (True, False), (1.5, False), ("1", False)]
)
def test_attempt_is_a_bounded_non_negative_integer(attempt, accepted: bool) -> None:
    body = {"ids": ["a"], "attempt": attempt}
    if accepted:
        assert recheck(body).attempt == attempt
    else:
        assert reason(json.dumps(body), internal=True) == "attempt must be a non-negative integer"


@pytest.mark.parametrize("field", ["since", "not_before"])
@pytest.mark.parametrize("value", ["yesterday", "2025-01-01T00:00:00", 5, "", ["2025-01-01T00:00:00Z"]])
def test_internal_times_must_be_iso_utc(field: str, value) -> None:
    assert reason(json.dumps({"ids": ["a"], field: value}), internal=True) == f"{field} must be an ISO 8601 UTC time"


def test_internal_times_may_carry_any_offset_or_be_null() -> None:
    request = recheck({"ids": ["a"], "since": "2026-11-29T11:00:00+02:00", "not_before": None})
    assert (request.since, request.not_before) == (SINCE, None)


# ---- malformed messages ---------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["attempt", "chain", "chains", "since", "not_before"])
def test_a_sender_cannot_write_internal_fields(field: str) -> None:
    value = {"attempt": 1, "chain": "c", "chains": ["c"], "since": "2001-01-01T00:00:00Z", "not_before": "2001-01-01T00:00:00Z"}[field]
    assert reason(json.dumps({"ids": ["x"], field: value})) == f"unknown field(s): {field} (internal to the service's own re-checks)"
    assert recheck({"ids": ["x"], field: value}).ids == ("x",)  # the same field is ours on the re-check queue


def test_a_message_is_a_senders_unless_said_to_come_from_the_recheck_queue() -> None:
    with pytest.raises(MalformedMessage, match=r"^unknown field\(s\): attempt \(internal"):
        parse_message('{"ids": ["a"], "attempt": 1}', WOOXY)


def test_a_sender_writing_every_internal_field_is_told_they_are_internal() -> None:
    body = {
        "ids": ["a"],
        "attempt": 1,
        "chain": "c",
        "chains": ["c"],
        "since": "2001-01-01T00:00:00Z",
        "not_before": "2001-01-01T00:00:00Z",
        "published": ["e"],
    }
    assert reason(json.dumps(body)) == (
        "unknown field(s): attempt, chain, chains, not_before, published (internal to the service's own re-checks)"  # 5 named
    )


def test_unknown_fields_are_named_up_to_five_and_internal_ones_only_said_so_when_alone() -> None:
    assert reason('{"ids": ["a"], "text": "hello", "attempt": 1}') == "unknown field(s): attempt, text"
    six = {"ids": ["a"], **{name: 1 for name in "bcdefg"}}
    assert reason(json.dumps(six)) == "unknown field(s): b, c, d, e, f"
    assert reason(json.dumps(six), internal=True) == "unknown field(s): b, c, d, e, f"


@pytest.mark.parametrize(
    ("body", "service", "why"),
    [
        ("not json", WOOXY, 'the body must be JSON: {"ids": [...]}'),
        (b"\xff", WOOXY, 'the body must be UTF-8 JSON: {"ids": [...]}'),
        ("[1, 2]", WOOXY, 'the body must be a JSON object like {"ids": [...]}'),
        ('{"ids": ["a"], "text": "hello"}', WOOXY, "unknown field(s): text"),
        ("{}", WOOXY, 'the body must hold exactly one of "ids" or "references"'),
        ('{"ids": ["1"], "references": ["r"]}', WWT, 'the body must hold exactly one of "ids" or "references"'),
        ('{"references": ["r"]}', WOOXY, "wooxy messages cannot be tracked by references"),
        ('{"references": ["r"]}', OPENMARKET, "openmarket messages cannot be tracked by references"),
        ('{"ids": "a"}', WOOXY, "ids must be an array of 1 to 100 strings"),
        ('{"ids": []}', WOOXY, "ids must be an array of 1 to 100 strings, got 0"),
        (json.dumps({"ids": [str(i) for i in range(101)]}), WOOXY, "ids must be an array of 1 to 100 strings, got 101"),
        ('{"references": []}', WWT, "references must be an array of 1 to 100 strings, got 0"),
        ('{"ids": [7]}', WOOXY, f"{ID_RULE} (bad positions: [0])"),
        ('{"ids": ["ok", "   "]}', WOOXY, f"{ID_RULE} (bad positions: [1])"),  # only whitespace
        ('{"ids": ["a\\u0000b"]}', WOOXY, f"{ID_RULE} (bad positions: [0])"),
        (json.dumps({"ids": ["x" * 129]}), WOOXY, f"{ID_RULE} (bad positions: [0])"),
        ('{"ids": ["a"], "context": {"x": NaN}}', WOOXY, 'the body must be JSON: {"ids": [...]}'),  # no event could carry it
        ('{"ids": ["1", "12a"]}', WWT, "ids[1]: a WWT message id must be 1 to 20 decimal digits"),
        ('{"references": ["has space"]}', WWT, "references[0]: a WWT reference must be 1 to 32 characters of a-z, A-Z or 0-9"),
        ('{"ids": ["a"], "context": [1]}', WOOXY, "context must be a JSON object"),
        ('{"ids": ["a"], "context": "hello"}', WOOXY, "context must be a JSON object"),
        (json.dumps({"ids": ["a"], "context": {"x": "y" * 4096}}), WOOXY, "context is larger than 4096 bytes"),
    ],
)
def test_malformed_messages_say_why_without_their_content(body: str, service, why: str) -> None:
    for internal in (False, True):  # the same rules on both queues
        said = reason(body, service, internal=internal)
        assert said == why
        assert "hello" not in said


# ---- any body at all --------------------------------------------------------------------------------------
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
json_values = st.recursive(
    scalars, lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=20
)
field_names = st.sampled_from(["ids", "references", "context", "attempt", "chain", "chains", "since", "not_before", "x"])
bodies = json_values | st.dictionaries(field_names, json_values, max_size=6)
PROPERTIES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTIES
@given(body=bodies, internal=st.booleans(), service=st.sampled_from([WOOXY, WWT, OPENMARKET]))
def test_any_json_body_is_a_request_or_malformed(body, internal: bool, service) -> None:
    try:
        request = parse_message(json.dumps(body), service, internal=internal)
    except MalformedMessage:
        return
    assert 1 <= len(request.ids) <= 100
    assert len(set(request.ids)) == len(request.ids)
    assert request.chains is None or len(request.chains) == len(request.ids)


chain_text = st.text(alphabet="abcdef0123456789", min_size=1, max_size=64)
# as a body carries them: ISO 8601 in UTC, to the millisecond
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)
)


@PROPERTIES
@given(
    ids=st.lists(st.text(alphabet="abcxyz0123456789-", min_size=1, max_size=20), min_size=1, max_size=100, unique=True),
    data=st.data(),
)
def test_any_recheck_the_function_writes_reads_back_the_same(ids: list[str], data) -> None:
    request = TrackRequest(
        kind="id",
        ids=tuple(ids),
        context=data.draw(st.none() | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)),
        attempt=data.draw(st.integers(0, 100_000)),
        chains=data.draw(st.none() | st.lists(chain_text, min_size=len(ids), max_size=len(ids)).map(tuple)),
        since=data.draw(st.none() | times),
        not_before=data.draw(st.none() | times),
    )
    assert parse_message(json.dumps(request.to_body()), WOOXY, internal=True) == request


# ---- the sample events ---------------------------------------------------------------------------------------
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
    event = json.loads((Path(__file__).resolve().parents[2] / "events" / "sqs" / name).read_text())
    failures = 0
    for record in event["Records"]:
        assert record["eventSource"] == "aws:sqs"
        try:
            parse_message(record["body"], service)
        except MalformedMessage:
            failures += 1
    assert failures == malformed


# ---- the configuration -----------------------------------------------------------------------------------------
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


def test_recheck_delays_come_from_the_environment() -> None:
    from sms_status.config import DEFAULT_RECHECK_DELAYS, parse_recheck_delays

    assert parse_recheck_delays("") == DEFAULT_RECHECK_DELAYS == (30, 60, 120, 240, 480, 900, 1800, 3600)
    assert parse_recheck_delays("1,1,2") == (1, 1, 2)
    env = {"STATUS_TABLE_NAME": "t", "EVENT_BUS_NAME": "b", "RECHECK_QUEUE_URL": "q", "RECHECK_QUEUE_ARN": "a", "RECHECK_DELAYS": "5, 10"}
    assert TrackingConfig.from_env(env).recheck_delays == (5, 10)


@pytest.mark.parametrize("raw", ["a", "1,,2", "0", "-5", "43201", "1.5"])
def test_bad_recheck_delays_are_a_configuration_error(raw: str) -> None:
    from sms_status.config import parse_recheck_delays

    with pytest.raises(ConfigError, match="RECHECK_DELAYS"):
        parse_recheck_delays(raw)


def test_published_event_ids_travel_on_the_recheck_queue_only() -> None:
    later = TrackRequest(kind="id", ids=("T-1",), attempt=2, chains=("abc",), published=("openmarket#id#T-1#3",))
    assert parse_message(json.dumps(later.to_body()), OPENMARKET, internal=True) == later
    with pytest.raises(MalformedMessage, match="internal to the service's own re-checks"):
        parse_message(json.dumps(later.to_body()), OPENMARKET)


@pytest.mark.parametrize("published", ["openmarket#id#T-1#3", [3], [""], ["x" * 301], ["e"] * 201])
def test_published_must_be_a_short_list_of_event_ids(published) -> None:
    body = {"ids": ["T-1"], "chains": ["abc"], "published": published}
    with pytest.raises(MalformedMessage, match=r"^published must be a list of event ids$"):
        parse_message(json.dumps(body), OPENMARKET, internal=True)


def test_published_takes_up_to_200_event_ids_of_1_to_300_characters() -> None:
    published = ("e", "x" * 300, *[f"openmarket#id#T-{n}#1" for n in range(198)])
    body = {"ids": ["T-1"], "chains": ["abc"], "published": list(published)}
    assert parse_message(json.dumps(body), OPENMARKET, internal=True).published == published

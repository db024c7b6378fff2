import json

import pytest

from sms_status.api import parse_batch
from sms_status.errors import InvalidRequest
from sms_status.model import Provider


def test_ids_are_returned_as_given():
    assert parse_batch(json.dumps({"ids": ["b", "a", "b"]}), Provider.WOOXY) == ("id", ["b", "a", "b"])


def test_wwt_accepts_references():
    assert parse_batch(json.dumps({"references": ["ext19"]}), Provider.WWT) == ("reference", ["ext19"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "must be JSON"),
        ("{not json", "must be JSON"),
        ('{"ids": [NaN]}', "must be JSON"),  # Python's json takes NaN; JSON has no such thing
        ('{"ids": ["a"], "x": Infinity}', "must be JSON"),
        ("[" * 100_000 + "]" * 100_000, "must be JSON"),  # deeper than the interpreter's stack: not a 500
        (b"\x10\xefj", "must be UTF-8 JSON"),
        ("[]", "JSON object"),
        ("{}", "exactly one of"),
        ('{"ids": []}', "ids must be an array of 1 to 100 strings, got 0"),
        ('{"ids": "abc"}', "ids must be an array of 1 to 100 strings"),
        ('{"ids": [1]}', r"each id must be a non-empty string .*\(bad positions: \[0\]\)"),
        ('{"ids": ["a", ""]}', r"bad positions: \[1\]"),
        ('{"ids": ["a", "  "]}', r"bad positions: \[1\]"),
        ('{"ids": ["a", null]}', r"bad positions: \[1\]"),
        ('{"ids": ["a\\u0000b", "ok", "c\\nd", "\\u0085"]}', r"without control characters \(bad positions: \[0, 2, 3\]\)"),
        ('{"ids": ["\\udc80"]}', r"bad positions: \[0\]"),  # a lone surrogate: no request or table could carry it
        (json.dumps({"ids": ["x" * 129]}), r"at most 128 characters"),
        ('{"ids": ["a"], "extra": 1}', 'unknown field\\(s\\): "extra"'),
        ('{"references": ["a"]}', "unknown field"),  # only WWT takes references
        (json.dumps({"ids": [str(i) for i in range(101)]}), "1 to 100 strings, got 101"),
    ],
)
def test_bad_bodies_are_clear_400s(body, message):
    with pytest.raises(InvalidRequest, match=message) as caught:
        parse_batch(body, Provider.OPENMARKET)
    assert caught.value.http_status == 400


def test_wwt_rejects_both_ids_and_references():
    with pytest.raises(InvalidRequest, match="exactly one of"):
        parse_batch(json.dumps({"ids": ["1"], "references": ["a"]}), Provider.WWT)


def test_wwt_ids_may_be_json_integers():
    # The contract: WWT ids are integers; the report keeps the decimal string
    assert parse_batch(json.dumps({"ids": [211, "212"]}), Provider.WWT) == ("id", ["211", "212"])


@pytest.mark.parametrize("bad", [True, -1, 1.5])
def test_wwt_ids_that_are_not_non_negative_integers_are_refused(bad):
    with pytest.raises(InvalidRequest):
        parse_batch(json.dumps({"ids": [bad]}), Provider.WWT)


def test_integer_ids_are_wwt_only():
    with pytest.raises(InvalidRequest):
        parse_batch(json.dumps({"ids": [211]}), Provider.WOOXY)


def test_unknown_field_names_are_cut_short_in_the_message():
    body = {"ids": ["a"], **{f"field{n}-" + "x" * 100: 1 for n in range(8)}}
    with pytest.raises(InvalidRequest) as caught:
        parse_batch(json.dumps(body), Provider.WOOXY)
    assert "x" * 40 not in caught.value.message
    assert caught.value.message.count('"field') == 5
    assert "and 3 more" in caught.value.message

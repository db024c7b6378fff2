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
        ("[]", "JSON object"),
        ("{}", "exactly one of"),
        ('{"ids": []}', "non-empty array"),
        ('{"ids": "abc"}', "non-empty array"),
        ('{"ids": [1]}', "non-empty strings"),
        ('{"ids": ["a", ""]}', r"bad positions: \[1\]"),
        ('{"ids": ["a", null]}', "non-empty strings"),
        ('{"ids": ["a"], "extra": 1}', "unknown field"),
        ('{"references": ["a"]}', "unknown field"),  # only WWT takes references
        (json.dumps({"ids": [str(i) for i in range(101)]}), "at most 100"),
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

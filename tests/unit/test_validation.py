"""The validator's answers, word for word: what a caller reads in a 400 is its only guide to fixing the request
(docs/api.md), and the details are what clients read by machine."""

from __future__ import annotations

import pytest

from sms_status.errors import InvalidRequest
from sms_status.validation import check_key, check_keys, id_body, is_key, parse_id_body

RULE = "each id must be a non-empty string of at most 128 characters, without control characters"


def refusal(call, *args, **kwargs) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        call(*args, **kwargs)
    return caught.value


def test_an_id_has_1_to_128_characters():
    assert is_key("a")
    assert is_key("x" * 128)
    assert not is_key("x" * 129)
    assert not is_key("")


def test_one_bad_id_is_explained():
    assert check_key("ok") == "ok"
    assert refusal(check_key, "").message == RULE
    assert refusal(check_key, "a\x00", "reference").message == RULE.replace("each id", "each reference")


def test_a_list_of_ids_that_is_not_one_says_how_many_are_allowed():
    error = refusal(check_keys, "abc", "ids", 100)
    assert (error.message, error.details) == ("ids must be an array of 1 to 100 strings", {"max": 100, "count": None})
    error = refusal(check_keys, [], "ids", None)
    assert (error.message, error.details) == ("ids must be an array of at least 1 strings, got 0", {"max": None, "count": 0})


def test_as_many_ids_as_the_limit_are_taken_and_one_more_is_not():
    assert check_keys(["a", "b", "c"], "ids", 3) == ["a", "b", "c"]
    error = refusal(check_keys, ["a", "b", "c", "d"], "ids", 3)
    assert (error.message, error.details) == ("ids must be an array of 1 to 3 strings, got 4", {"max": 3, "count": 4})


def test_bad_references_are_named_references():
    error = refusal(check_keys, ["ok", ""], "references", 10)
    assert error.message == RULE.replace("each id", "each reference") + " (bad positions: [1])"


def test_the_message_shows_ten_bad_positions_and_the_details_a_hundred():
    error = refusal(check_keys, [""] * 150, "ids", None)
    assert error.message == f"{RULE} (bad positions: {list(range(10))})"
    assert error.details == {"positions": list(range(100))}


def test_a_body_of_one_field_without_a_converter_takes_its_items_as_they_are():
    assert id_body({"ids": ["a"]}, {"ids": "id"}, 10) == ("ids", "id", ["a"])
    assert refusal(id_body, {"ids": ["a", 7]}, {"ids": "id"}, 10).details == {"positions": [1]}


def test_the_expected_shapes_are_named_in_every_refusal():
    fields = {"ids": "id", "references": "reference"}
    expected = '{"ids": [...]} or {"references": [...]}'
    assert refusal(parse_id_body, b"\xff", fields, 10).message == f"the body must be UTF-8 JSON: {expected}"
    assert refusal(parse_id_body, "{", fields, 10).message == f"the body must be JSON: {expected}"
    assert refusal(parse_id_body, "[]", fields, 10).message == f"the body must be a JSON object: {expected}"
    assert refusal(parse_id_body, "{}", fields, 10).message == f"the body must hold exactly one of: {expected}"
    assert refusal(id_body, {"x": 1}, fields, 10).message == f'unknown field(s): "x"; expected {expected}'


def test_unknown_field_names_are_listed_five_at_most_and_cut_at_32_characters():
    at_limit, over = "a" * 32, "b" * 33
    error = refusal(id_body, {at_limit: 1, over: 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7, "ids": ["x"]}, {"ids": "id"}, 10)
    shown = f'"{at_limit}", "{"b" * 32}...", "c", "d", "e"'
    assert error.message == f'unknown field(s): {shown} and 2 more; expected {{"ids": [...]}}'
    five = refusal(id_body, {"c": 3, "d": 4, "e": 5, "f": 6, "g": 7}, {"ids": "id"}, 10)
    assert five.message == 'unknown field(s): "c", "d", "e", "f", "g"; expected {"ids": [...]}'
    six = refusal(id_body, {"c": 3, "d": 4, "e": 5, "f": 6, "g": 7, "h": 8}, {"ids": "id"}, 10)
    assert six.message.startswith('unknown field(s): "c", "d", "e", "f", "g" and 1 more;')

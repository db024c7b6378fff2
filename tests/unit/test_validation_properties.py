"""Properties of the request validators (sms_status.validation) and of the routes' body and path parsing.

Whatever a caller sends, the answer is the parsed request or an InvalidRequest (a 400): never another exception
(which would be a 500). Derandomized, no example database: the same cases on every run.
"""

from __future__ import annotations

import base64
import json
import re
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from sms_status.api import BATCH_KEYS, parse_batch, path_value, request_body
from sms_status.errors import InvalidRequest
from sms_status.model import Provider, ProviderStatus, Report, Status, parse_price, to_json
from sms_status.validation import MAX_KEY_LENGTH, check_keys, is_key

ROOT = Path(__file__).resolve().parents[2]
PROPERTIES = settings(max_examples=300, deadline=None, derandomize=True, database=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
# What a caller can put in a body: ids, references, other fields, anything in them.
bodies = json_values | st.dictionaries(st.sampled_from(["ids", "references", "context", ""]), json_values, max_size=3)
valid_keys = st.text(min_size=1, max_size=MAX_KEY_LENGTH).filter(is_key)


def document_key_pattern() -> re.Pattern[str]:
    document = yaml.safe_load((ROOT / "api" / "openapi.yaml").read_text())
    return re.compile(document["components"]["schemas"]["IdsRequest"]["properties"]["ids"]["items"]["pattern"])


KEY_PATTERN = document_key_pattern()


@PROPERTIES
@given(body=bodies, provider=st.sampled_from(list(Provider)))
def test_any_json_body_is_parsed_or_refused_as_a_400(body: object, provider: Provider) -> None:
    try:
        kind, keys = parse_batch(json.dumps(body), provider)
    except InvalidRequest:  # a 400; anything else raised here would be a 500
        return
    assert kind in BATCH_KEYS[provider].values()
    assert 1 <= len(keys) <= 100
    assert all(is_key(key) for key in keys)


@PROPERTIES
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_are_parsed_or_refused_as_a_400(raw: bytes) -> None:
    # As API Gateway hands over a body that is not UTF-8: base64-encoded.
    event = APIGatewayProxyEvent({"body": base64.b64encode(raw).decode(), "isBase64Encoded": True})
    with suppress(InvalidRequest):  # a 400; anything else raised here would be a 500
        parse_batch(request_body(event), Provider.WWT)


@PROPERTIES
@given(keys=st.lists(valid_keys, min_size=1, max_size=100))
def test_valid_ids_come_back_as_given(keys: list[str]) -> None:
    assert parse_batch(json.dumps({"ids": keys}), Provider.WOOXY) == ("id", keys)


@PROPERTIES
@given(
    keys=st.lists(valid_keys, min_size=1, max_size=60),
    bad=st.lists(st.sampled_from(["", " ", "\t", "a\x00", "\x85", "x" * 129, None, 7, [], {}]), min_size=1, max_size=40),
    data=st.data(),
)
def test_the_error_names_exactly_the_bad_positions(keys: list[object], bad: list[object], data: st.DataObject) -> None:
    items = list(keys)
    for value in bad:
        items.insert(data.draw(st.integers(0, len(items))), value)
    expected = [position for position, item in enumerate(items) if not is_key(item)]
    with pytest.raises(InvalidRequest) as caught:
        check_keys(items, "ids", limit=None)
    assert caught.value.details == {"positions": expected}


@PROPERTIES
@given(text=st.text(max_size=MAX_KEY_LENGTH + 2))
def test_the_document_and_the_code_agree_on_what_an_id_is(text: str) -> None:
    # api/openapi.yaml: pattern + minLength 1 + maxLength 128 (st.text() has no lone surrogates: no URL or UTF-8
    # body can carry one, and the code refuses them too).
    by_document = KEY_PATTERN.fullmatch(text) is not None and 1 <= len(text) <= MAX_KEY_LENGTH
    assert is_key(text) == by_document


@PROPERTIES
@given(text=st.text(min_size=1, max_size=40))
def test_a_percent_encoded_path_value_decodes_to_what_was_encoded(text: str) -> None:
    assert path_value(quote(text, safe="")) == text


@PROPERTIES
@given(raw=st.text(alphabet="%0123456789abcdefABCDEFxyz/é ", max_size=30))
def test_any_path_value_decodes_or_is_a_400(raw: str) -> None:
    with suppress(InvalidRequest):  # a 400; anything else raised here would be a 500
        assert isinstance(path_value(raw), str)


@PROPERTIES
@given(price=st.floats() | st.decimals() | st.text(max_size=12) | st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "1e-400"]))
def test_a_report_with_any_price_is_standard_json(price: object) -> None:
    report = Report(Provider.WOOXY, "m1", Status.DELIVERED, True, provider_status=ProviderStatus("delivered"), price=parse_price(price))
    written = to_json(report.to_dict())
    number = json.loads(written)["price"]
    assert number is None or isinstance(number, int | float)

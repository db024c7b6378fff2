"""A parameter value CloudFormation accepts is one the code accepts: no stack deploys that then fails every message.

RecheckDelays reaches the tracking functions as RECHECK_DELAYS, read by config.parse_recheck_delays on every cold
start; a value the parser refuses fails every tracking invocation. CloudFormation checks AllowedPattern (a Java
regular expression matching the whole value; the pattern uses only syntax Java and Python read alike).
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from sms_status.config import DEFAULT_RECHECK_DELAYS, MAX_RECHECK_DELAY, ConfigError, parse_recheck_delays
from tests.infra.test_template import parameter_default, template

PATTERN = re.compile(template()["Parameters"]["RecheckDelays"]["AllowedPattern"])


def accepts(value: str) -> bool:
    try:
        parse_recheck_delays(value)
    except ConfigError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(st.from_regex(PATTERN, fullmatch=True))
def test_whatever_the_pattern_accepts_the_parser_accepts(value: str) -> None:
    delays = parse_recheck_delays(value)
    assert delays == tuple(int(part) for part in value.split(","))
    assert all(1 <= delay <= MAX_RECHECK_DELAY for delay in delays)


def test_the_pattern_accepts_every_delay_the_parser_accepts_and_no_other() -> None:
    # Every single delay written plainly, across the parser's bound: the pattern is exactly the rule, not only
    # inside it (a legal schedule is never refused at deploy time).
    for seconds in range(0, MAX_RECHECK_DELAY + 1000):
        assert bool(PATTERN.fullmatch(str(seconds))) == accepts(str(seconds)), seconds


def test_the_values_that_used_to_deploy_and_then_fail_every_message_are_refused() -> None:
    for value in ("0", "99999", "30,0", "30,60,99999", "43201"):
        assert not accepts(value), value
        assert not PATTERN.fullmatch(value), value


def test_what_the_pattern_refuses_where_the_parser_is_lenient() -> None:
    # The only values the parser takes and the pattern does not: leading zeros, blanks, a sign. CloudFormation
    # refuses them at deploy time; nothing valid is lost (write 30, not 030).
    for value in ("030", " 30", "30, 60", "+30"):
        assert accepts(value), value
        assert not PATTERN.fullmatch(value), value
    assert not PATTERN.fullmatch("")  # empty means "the default" to the parser; the parameter has a default instead


def test_the_default_is_the_codes_default_and_matches() -> None:
    default = parameter_default("RecheckDelays")
    assert PATTERN.fullmatch(default)
    assert parse_recheck_delays(default) == DEFAULT_RECHECK_DELAYS

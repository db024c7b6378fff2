"""Alarm metric math that still has a value when an input has no data point.

CloudWatch metric math gives no value at a timestamp where an input of an arithmetic operator has none, and many
metrics are sparse: Step Functions publishes ExecutionsFailed only in periods with a failed execution, our
LookupErrors only when a lookup failed. `a + b` over two such metrics then has a value only when both have one,
so an alarm on it practically never fires, and `TreatMissingData: notBreaching` hides that. So every operand of
`+ - * /` that is a metric must be wrapped in FILL(m, value), or be an aggregate over an array (SUM, MAX ...,
which combine the series that do have a value). The one exception is a divisor: a rate whose denominator has no
data point (no requests) has nothing to measure, and no value is the right answer there.
CloudWatch User Guide, "Metric math syntax and functions" (FILL):
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.infra.test_template import resources

TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<string>'[^']*'|\"[^\"]*\")|(?P<op>[-+*/^(),\[\]]))"
)
# Functions whose answer at a timestamp does not vanish because one series of their array has no value there.
AGGREGATES = {"SUM", "MAX", "MIN", "AVG", "STDDEV"}
FILLS = {"FILL"}
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 3}


@dataclass(frozen=True)
class Node:
    kind: str  # "id", "number", "string", "call", "list", "binary", "negate"
    value: str = ""
    children: tuple[Node, ...] = ()


def tokens(expression: str) -> list[tuple[str, str]]:
    found, position = [], 0
    while position < len(expression.rstrip()):
        match = TOKEN.match(expression, position)
        assert match, f"cannot read {expression[position:]!r} in {expression!r}"
        assert match.end() > position, f"cannot read {expression[position:]!r} in {expression!r}"
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


class Parser:
    """Metric math's grammar, as far as alarms use it: numbers, ids, calls, [arrays], unary minus, + - * / ^."""

    def __init__(self, expression: str) -> None:
        self.tokens = tokens(expression)
        self.at = 0

    def parse(self) -> Node:
        node = self.binary(1)
        assert self.at == len(self.tokens), f"trailing {self.tokens[self.at :]}"
        return node

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.tokens[self.at]
        assert value is None or token[1] == value, f"expected {value!r}, got {token[1]!r}"
        self.at += 1
        return token

    def binary(self, minimum: int) -> Node:
        left = self.unary()
        while (token := self.peek()) and token[0] == "op" and PRECEDENCE.get(token[1], 0) >= minimum:
            operator = self.take()[1]
            right = self.binary(PRECEDENCE[operator] + (0 if operator == "^" else 1))
            left = Node("binary", operator, (left, right))
        return left

    def unary(self) -> Node:
        if self.peek() == ("op", "-"):
            self.take()
            return Node("negate", "-", (self.unary(),))
        return self.atom()

    def atom(self) -> Node:
        kind, value = self.take()
        if kind == "number":
            return Node("number", value)
        if kind == "string":
            return Node("string", value)
        if (kind, value) == ("op", "("):
            node = self.binary(1)
            self.take(")")
            return node
        if (kind, value) == ("op", "["):
            return Node("list", "", self.items("]"))
        assert kind == "name", f"unexpected {value!r}"
        if self.peek() == ("op", "("):
            self.take()
            return Node("call", value.upper(), self.items(")"))
        return Node("id", value)

    def items(self, closing: str) -> tuple[Node, ...]:
        found: list[Node] = []
        while self.peek() != ("op", closing):
            found.append(self.binary(1))
            if self.peek() == ("op", ","):
                self.take()
        self.take(closing)
        return tuple(found)


def unfilled_operands(node: Node, metric_ids: set[str]) -> list[str]:
    """Metric ids used directly as an operand of an arithmetic operator (a divisor excepted), anywhere in the tree."""
    found: list[str] = []
    if node.kind == "binary":
        left, right = node.children
        operands = [left] if node.value == "/" else [left, right]
        for operand in operands:
            if operand.kind == "id" and operand.value in metric_ids:
                found.append(operand.value)
            elif operand.kind == "call" and operand.value not in FILLS | AGGREGATES:
                # e.g. RATE(m) or ABS(m): as sparse as m itself.
                found += [arg.value for arg in operand.children if arg.kind == "id" and arg.value in metric_ids]
    if node.kind == "negate" and node.children[0].kind == "id" and node.children[0].value in metric_ids:
        found.append(node.children[0].value)
    for child in node.children:
        found += unfilled_operands(child, metric_ids)
    return found


def unfilled(expression: str, metric_ids: set[str]) -> list[str]:
    return unfilled_operands(Parser(expression).parse(), metric_ids)


def alarm_expressions() -> list[tuple[str, str, set[str]]]:
    """(alarm, expression, ids of the alarm's metrics) for every expression of every alarm."""
    found = []
    for alarm, body in resources("AWS::CloudWatch::Alarm").items():
        queries: list[dict[str, Any]] = body["Properties"].get("Metrics", [])
        metric_ids = {query["Id"] for query in queries if "MetricStat" in query}
        found += [(alarm, query["Expression"], metric_ids) for query in queries if "Expression" in query]
    return found


def test_there_are_alarm_expressions_to_check() -> None:
    alarms = {alarm for alarm, _, _ in alarm_expressions()}
    assert {"BulkExecutionsFailedAlarm", "LambdaErrorsAlarm", "LambdaThrottlesAlarm", "Api5xxRateAlarm"} <= alarms


@pytest.mark.parametrize(("alarm", "expression", "metric_ids"), alarm_expressions(), ids=lambda value: str(value)[:40])
def test_every_operand_that_can_be_missing_is_filled(alarm: str, expression: str, metric_ids: set[str]) -> None:
    assert unfilled(expression, metric_ids) == [], f"{alarm}: {expression!r} has no value when one of these has none"


@pytest.mark.parametrize(
    ("expression", "bare"),
    [
        ("failed + timedout + aborted", ["failed", "timedout", "aborted"]),  # the alarm as it was
        ("100 * fivexx / requests", ["fivexx"]),
        ("-failed", ["failed"]),
        ("(failed + 1) * 2", ["failed"]),
        ("FILL(failed, 0) + timedout", ["timedout"]),
        ("FILL(failed, 0) + FILL(timedout, 0) + FILL(aborted, 0)", []),
        ("100 * FILL(fivexx, 0) / requests", []),
        ("SUM([failed, timedout, aborted])", []),
        ("100 * SUM([errors0, errors1]) / SUM([asked0, asked1])", []),
        ("MAX([q0, q1, q2])", []),
        ("SUM([failed, timedout + aborted])", ["timedout", "aborted"]),  # inside an array still counts
        ("RATE(failed) + FILL(timedout, 0)", ["failed"]),
    ],
)
def test_the_checker_tells_filled_from_bare_operands(expression: str, bare: list[str]) -> None:
    ids = {"failed", "timedout", "aborted", "fivexx", "requests", "errors0", "errors1", "asked0", "asked1", "q0", "q1", "q2"}
    assert sorted(unfilled(expression, ids)) == sorted(bare)


def test_the_checker_refuses_what_it_cannot_read() -> None:
    # Comparison operators are beyond this checker: it fails rather than guesses.
    with pytest.raises(AssertionError):
        unfilled("IF(failed > 0, 1, 0)", {"failed"})

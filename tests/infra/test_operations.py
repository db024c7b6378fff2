"""The dashboard and the alarms watch only what something emits.

Our own metrics (namespace SmsStatus) must be declared in observability.METRICS, with exactly the declared
dimensions plus Powertools' `service`, whose value must be the POWERTOOLS_SERVICE_NAME of a function of the
template; every declared metric must be emitted by the code and shown on the dashboard. AWS's metrics must name
resources of this template. Every alarm notifies AlarmTopicArn and is explained in docs/operations.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from sms_status.observability import METRICS, SERVICE_DIMENSION

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE: dict[str, Any] = cfn_yaml.load(str(ROOT / "template.yaml"))
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
NAMESPACE = "SmsStatus"
SEARCH = re.compile(r"SEARCH\('\{(?P<schema>[^}]*)\}(?P<terms>[^']*)'")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9:]+)(?:\.[A-Za-z]+)?\}")
# What AWS emits, per namespace, with the dimension each is read by here.
AWS_METRICS = {
    "AWS/Lambda": ({"Errors", "Throttles", "Duration"}, {"FunctionName"}),
    "AWS/SQS": ({"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}, {"QueueName"}),
    "AWS/States": (
        {"ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted", "ExecutionTime"},
        {"StateMachineArn"},
    ),
    "AWS/ApiGateway": ({"Count", "4XXError", "5XXError", "Latency"}, {"ApiName", "Stage"}),
}


def services() -> set[str]:
    return {
        body["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for body in RESOURCES.values()
        if body["Type"] == "AWS::Serverless::Function"
    }


def dashboard() -> dict[str, Any]:
    body = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for name in PLACEHOLDER.findall(body):  # every ${...} is a parameter, a pseudo parameter or a resource
        assert name in RESOURCES or name in TEMPLATE["Parameters"] or name.startswith("AWS::"), name
    return json.loads(body)


def widget_metrics() -> Iterator[tuple[str, str, dict[str, str]]]:
    """(namespace, metric name, {dimension: value}) of every metric and SEARCH on the dashboard."""
    for widget in dashboard()["widgets"]:
        for entry in widget["properties"].get("metrics", []):
            head = entry[0]
            if isinstance(head, dict):
                found = SEARCH.search(head["expression"])
                if found:
                    namespace, *dimensions = [part.strip() for part in found["schema"].split(",")]
                    terms = dict(re.findall(r'(\w+)="([^"]*)"', found["terms"]))
                    name = terms.pop("MetricName")
                    yield namespace, name, {dimension: terms.get(dimension, "*") for dimension in dimensions}
                continue
            namespace, name, *pairs = [part for part in entry if not isinstance(part, dict)]
            yield namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True))


def alarm_metrics() -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(alarm, namespace, metric name, {dimension: value}) of every alarm's metrics."""
    for alarm, body in RESOURCES.items():
        if body["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = body["Properties"]
        if "MetricName" in props:
            yield alarm, props["Namespace"], props["MetricName"], {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        for query in props.get("Metrics", []):
            if "MetricStat" in query:
                metric = query["MetricStat"]["Metric"]
                yield alarm, metric["Namespace"], metric["MetricName"], {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}


def check(namespace: str, name: str, dimensions: dict[str, Any], where: str) -> None:
    if namespace == NAMESPACE:
        assert name in METRICS, f"{where}: {name} is not emitted (not in observability.METRICS)"
        assert set(dimensions) == {*METRICS[name].dimensions, SERVICE_DIMENSION}, f"{where}: {name} dimensions {sorted(dimensions)}"
        service = dimensions[SERVICE_DIMENSION]
        assert service == "*" or service in services(), f"{where}: no function has service {service}"
        return
    assert namespace in AWS_METRICS, f"{where}: namespace {namespace}"
    names, dimension_names = AWS_METRICS[namespace]
    assert name in names, f"{where}: {namespace} {name}"
    assert set(dimensions) == dimension_names, f"{where}: {namespace} {name} dimensions {sorted(dimensions)}"
    for value in dimensions.values():  # ${Resource}, !Ref/!GetAtt of a resource, or the stack's own API name
        text = json.dumps(value)
        refs = PLACEHOLDER.findall(text) + re.findall(r'"(?:Ref|Fn::GetAtt)": \[?"(\w+)', text)
        assert refs, f"{where}: {value} names no resource"
        assert all(ref in RESOURCES or ref in TEMPLATE["Parameters"] or ref.startswith("AWS::") for ref in refs), f"{where}: {value}"


def test_the_dashboard_and_alarms_exist_to_be_checked():
    assert len(list(widget_metrics())) >= 40
    assert len(list(alarm_metrics())) >= 20


def test_every_dashboard_metric_is_emitted_with_its_dimensions():
    for namespace, name, dimensions in widget_metrics():
        check(namespace, name, dimensions, "dashboard")


def test_every_alarm_watches_an_emitted_metric_with_its_dimensions():
    for alarm, namespace, name, dimensions in alarm_metrics():
        check(namespace, name, dimensions, alarm)


def test_every_declared_metric_is_emitted_by_the_code_and_on_the_dashboard():
    source = "\n".join(path.read_text() for path in (ROOT / "layers" / "shared" / "sms_status").rglob("*.py"))
    shown = {name for namespace, name, _ in widget_metrics() if namespace == NAMESPACE}
    for name in METRICS:
        assert f'emit("{name}"' in source, f"{name} is declared but never emitted"
        assert name in shown, f"{name} is emitted but not on the dashboard"


def test_a_widget_naming_an_unemitted_metric_would_fail():
    with pytest.raises(AssertionError, match="not emitted"):
        check(NAMESPACE, "Deliveries", {"provider": "wooxy", "service": "wooxy"}, "probe")
    with pytest.raises(AssertionError, match="dimensions"):
        check(NAMESPACE, "Lookups", {"provider": "wooxy", "service": "wooxy"}, "probe")
    with pytest.raises(AssertionError, match="no function"):
        check(NAMESPACE, "LookupIds", {"provider": "wooxy", "service": "sms"}, "probe")


def test_every_alarm_notifies_the_topic_and_is_explained_in_the_operations_guide():
    guide = (ROOT / "docs" / "operations.md").read_text()
    alarms = [name for name, body in RESOURCES.items() if body["Type"] == "AWS::CloudWatch::Alarm"]
    assert len(alarms) >= 11
    for alarm in alarms:
        actions = RESOURCES[alarm]["Properties"]["AlarmActions"]
        assert actions == [{"Fn::If": ["CreatesAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}], alarm
        assert f"`{alarm}`" in guide, f"docs/operations.md does not explain {alarm}"


def test_access_logs_are_json_lines_without_bodies_or_query_strings():
    api = RESOURCES["SmsStatusApi"]["Properties"]
    setting = api["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    line = json.loads(setting["Format"])
    assert {"requestId", "caller", "route", "status", "latencyMs"} <= set(line)
    assert line["caller"] == "$context.identity.userArn"
    assert "$context.resourcePath" in line["route"]
    assert "$context.path" not in setting["Format"]
    for leak in ("$input", "$context.requestOverride", "querystring", "$context.path"):
        assert leak not in setting["Format"]
    assert RESOURCES["ApiAccessLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_dashboard_url_is_an_output():
    url = TEMPLATE["Outputs"]["OperationsDashboardUrl"]["Value"]["Fn::Sub"]
    assert "#dashboards:name=${OperationsDashboard}" in url


def test_every_function_is_on_the_dashboard_and_in_the_errors_alarm():
    functions = {name for name, body in RESOURCES.items() if body["Type"] == "AWS::Serverless::Function"}
    assert len(functions) == 9
    shown = {
        re.sub(r"^\$\{(\w+)\}$", r"\1", dims["FunctionName"]) for namespace, name, dims in widget_metrics() if namespace == "AWS/Lambda"
    }
    assert shown == functions
    for metric in ("Errors", "Throttles", "Duration"):
        per_metric = {dims["FunctionName"] for namespace, name, dims in widget_metrics() if (namespace, name) == ("AWS/Lambda", metric)}
        assert per_metric == {f"${{{function}}}" for function in functions}, metric
    assert {dims["FunctionName"]["Ref"] for alarm, _, _, dims in alarm_metrics() if alarm == "LambdaErrorsAlarm"} == functions


def test_the_throttles_alarm_watches_exactly_the_functions_that_should_never_be_throttled():
    # A tracking function reserves what its event sources may use, so a throttle there is a misconfigured budget;
    # the API and chunk functions are left out: throttling there is their share of the provider budget working.
    watched = {dims["FunctionName"]["Ref"] for alarm, _, _, dims in alarm_metrics() if alarm == "LambdaThrottlesAlarm"}
    tracking = {"OpenMarketTrackingFunction", "WooxyTrackingFunction", "WwtTrackingFunction"}
    assert watched == {"TrackedFunction", "WooxyBulkFunction"} | tracking
    for function in tracking:
        events = RESOURCES[function]["Properties"]["Events"]
        assert {event["Type"] for event in events.values()} == {"SQS"}


def test_every_alarm_reaches_a_topic_whatever_the_parameters():
    # AlarmTopicArn given: that topic. Empty (the default): the stack's own topic, created on exactly that condition.
    conditions = TEMPLATE["Conditions"]
    assert conditions["CreatesAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}
    assert TEMPLATE["Parameters"]["AlarmTopicArn"]["Default"] == ""
    topic = RESOURCES["AlarmTopic"]
    assert (topic["Type"], topic["Condition"]) == ("AWS::SNS::Topic", "CreatesAlarmTopic")
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "SubscribesAlarmEmail"
    assert subscription["Properties"] == {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}
    assert conditions["SubscribesAlarmEmail"]["Fn::And"][0] == {"Condition": "CreatesAlarmTopic"}
    output = TEMPLATE["Outputs"]["AlarmNotificationTopicArn"]["Value"]
    assert output == {"Fn::If": ["CreatesAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}
    pattern = re.compile(TEMPLATE["Parameters"]["AlarmEmail"]["AllowedPattern"])
    assert pattern.fullmatch("")
    assert pattern.fullmatch("oncall@example.com")
    assert not pattern.fullmatch("oncall")


def test_every_function_emits_into_the_namespace_the_dashboard_reads() -> None:
    # Powertools reads POWERTOOLS_METRICS_NAMESPACE itself (observability.emit names none): without it, no metric.
    shared = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    for name, body in RESOURCES.items():
        if body["Type"] == "AWS::Serverless::Function":
            own = body["Properties"].get("Environment", {}).get("Variables", {})
            assert {**shared, **own}.get("POWERTOOLS_METRICS_NAMESPACE") == NAMESPACE, name

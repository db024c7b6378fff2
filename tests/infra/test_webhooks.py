"""The status webhook in template.yaml: resources only with a WebhookUrl, EventBridge's own delivery (API
destination, 24 hours of retries, a DLQ with an alarm), no secret in the template, and least privilege."""

from __future__ import annotations

import re

import pytest

from local.template import Resolver
from tests.infra.test_least_privilege import grants_of, role_statements, sam_translate, trust
from tests.infra.test_template import TEMPLATE_PATH, resources, template

WEBHOOK_RESOURCES = {
    "WebhookSecret": "AWS::SecretsManager::Secret",
    "WebhookConnection": "AWS::Events::Connection",
    "WebhookDestination": "AWS::Events::ApiDestination",
    "WebhookRole": "AWS::IAM::Role",
    "WebhookRule": "AWS::Events::Rule",
    "WebhookDeadLetterQueue": "AWS::SQS::Queue",
    "WebhookDeadLetterQueuePolicy": "AWS::SQS::QueuePolicy",
    "WebhookDeadLetterAlarm": "AWS::CloudWatch::Alarm",
}
PARAMETERS = ("WebhookUrl", "WebhookSecretName", "WebhookAuthHeader", "WebhookProviders", "WebhookEvents", "WebhookRateLimit")


def defaults(**overrides: str) -> dict[str, str]:
    values = {name: str(spec.get("Default", "")) for name, spec in template()["Parameters"].items()}
    return {**values, **overrides}


def exists(logical: str, parameters: dict[str, str]) -> bool:
    condition = resources()[logical].get("Condition")
    return condition is None or Resolver(template(), parameters, {}).condition(condition)


def webhook_rule_pattern(**overrides: str) -> dict:
    return Resolver(template(), defaults(WebhookUrl="https://hooks.example.com/sms", **overrides), {}).resolve(
        resources()["WebhookRule"]["Properties"]["EventPattern"]
    )


def test_the_webhook_resources_are_exactly_these() -> None:
    found = {name: body["Type"] for name, body in resources().items() if name.startswith("Webhook")}
    assert found == WEBHOOK_RESOURCES
    assert set(PARAMETERS) <= set(template()["Parameters"])


def test_no_webhook_resource_or_output_exists_without_a_url() -> None:
    parameters = defaults()
    assert parameters["WebhookUrl"] == ""
    for logical in WEBHOOK_RESOURCES:
        assert not exists(logical, parameters), logical
    for name, output in template()["Outputs"].items():
        if name.startswith("Webhook"):
            assert not Resolver(template(), parameters, {}).condition(output["Condition"]), name


def test_every_webhook_resource_exists_with_a_url_the_secret_unless_one_is_named() -> None:
    url = "https://hooks.example.com/sms"
    for logical in WEBHOOK_RESOURCES:
        assert exists(logical, defaults(WebhookUrl=url)), logical
    named = defaults(WebhookUrl=url, WebhookSecretName="team/webhook")
    assert not exists("WebhookSecret", named)
    assert all(exists(logical, named) for logical in WEBHOOK_RESOURCES if logical != "WebhookSecret")


def test_the_url_pattern_takes_https_urls_only() -> None:
    pattern = re.compile(template()["Parameters"]["WebhookUrl"]["AllowedPattern"])
    for good in ("", "https://hooks.example.com/sms", "https://h.example.com:8443/a/b?token=x&y=1"):
        assert pattern.fullmatch(good), good
    for bad in ("http://hooks.example.com/sms", "https://h.example.com/*", "https://h.example.com/a b", "ftp://x"):
        assert not pattern.fullmatch(bad), bad


def test_the_secret_never_is_in_the_template_only_a_dynamic_reference() -> None:
    auth = resources()["WebhookConnection"]["Properties"]
    assert auth["AuthorizationType"] == "API_KEY"
    api_key = auth["AuthParameters"]["ApiKeyAuthParameters"]
    assert api_key["ApiKeyName"] == {"Ref": "WebhookAuthHeader"}
    condition, generated, named = api_key["ApiKeyValue"]["Fn::If"]
    assert condition == "CreatesWebhookSecret"
    assert generated == {"Fn::Sub": "{{resolve:secretsmanager:${WebhookSecret}:SecretString}}"}
    assert named == {"Fn::Sub": "{{resolve:secretsmanager:${WebhookSecretName}:SecretString}}"}
    secret = resources()["WebhookSecret"]["Properties"]
    assert "SecretString" not in secret
    assert secret["GenerateSecretString"]["PasswordLength"] >= 32


def test_the_destination_posts_to_the_url_at_the_configured_rate() -> None:
    props = resources()["WebhookDestination"]["Properties"]
    assert props["HttpMethod"] == "POST"
    assert props["InvocationEndpoint"] == {"Ref": "WebhookUrl"}
    assert props["InvocationRateLimitPerSecond"] == {"Ref": "WebhookRateLimit"}
    assert props["ConnectionArn"] == {"Fn::GetAtt": ["WebhookConnection", "Arn"]}


def test_the_rule_sends_the_detail_retries_24_hours_then_dead_letters() -> None:
    rule = resources()["WebhookRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "StatusEventBus"}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["WebhookDestination", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["WebhookRole", "Arn"]}
    assert target["InputPath"] == "$.detail"
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]}}


@pytest.mark.parametrize(
    ("overrides", "report"),
    [
        ({}, {"provider": ["openmarket", "wooxy", "wwt"], "final": [True]}),
        ({"WebhookEvents": "all"}, {"provider": ["openmarket", "wooxy", "wwt"]}),
        ({"WebhookProviders": "wooxy", "WebhookEvents": "final"}, {"provider": ["wooxy"], "final": [True]}),
    ],
)
def test_the_rule_selects_the_providers_and_events_asked_for(overrides: dict[str, str], report: dict) -> None:
    from sms_status.publish import DETAIL_TYPE, SOURCE

    pattern = webhook_rule_pattern(**overrides)
    assert pattern["source"] == [SOURCE, "sms-status.webhook-redrive"]
    assert pattern["detail-type"] == [DETAIL_TYPE]
    assert pattern["detail"] == {"report": report}


def test_the_role_may_invoke_that_one_destination_and_nothing_else() -> None:
    assert grants_of(role_statements("WebhookRole")) == {"WebhookDestination": {"events:InvokeApiDestination"}}
    statement = role_statements("WebhookRole")[0]
    assert statement["Resource"] == {"Fn::GetAtt": ["WebhookDestination", "ArnForPolicy"]}  # IAM's form: no id suffix
    assert trust("WebhookRole")["Principal"] == {"Service": "events.amazonaws.com"}


def test_only_the_webhook_rule_may_send_to_the_dlq() -> None:
    props = resources()["WebhookDeadLetterQueuePolicy"]["Properties"]
    assert props["Queues"] == [{"Ref": "WebhookDeadLetterQueue"}]
    (statement,) = props["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["WebhookRule", "Arn"]}}}


def test_the_dlq_keeps_14_days_and_its_alarm_reaches_the_alarm_topic() -> None:
    queue = resources()["WebhookDeadLetterQueue"]["Properties"]
    assert queue["MessageRetentionPeriod"] == 1209600
    assert queue["SqsManagedSseEnabled"] is True
    alarm = resources()["WebhookDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["WebhookDeadLetterQueue", "QueueName"]}}]
    assert (alarm["MetricName"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "ApproximateNumberOfMessagesVisible",
        0,
        "GreaterThanThreshold",
    )
    assert alarm["AlarmActions"] == [{"Fn::If": ["CreatesAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}]


def test_the_dlq_is_an_output_for_the_redrive() -> None:
    outputs = template()["Outputs"]
    assert outputs["WebhookDeadLetterQueueUrl"]["Value"] == {"Ref": "WebhookDeadLetterQueue"}
    assert outputs["WebhookSecretArn"]["Condition"] == "CreatesWebhookSecret"


@pytest.mark.slow
def test_sam_passes_the_webhook_resources_through_unchanged() -> None:
    deployed = sam_translate(TEMPLATE_PATH)["Resources"]
    for logical, kind in WEBHOOK_RESOURCES.items():
        assert deployed[logical]["Type"] == kind
        assert deployed[logical]["Condition"] == resources()[logical]["Condition"]

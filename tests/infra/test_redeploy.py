"""The stack can be deleted and created again: nothing it keeps on deletion blocks its next creation.

The provider secrets are retained when the stack is deleted (they hold the real credentials, and CloudFormation
deletes a secret with no recovery window). A fixed name made the next `sam deploy` of the same stack fail with
"already exists"; by default each secret is now named after the stack and the first part of the stack id, which
CloudFormation makes new for every creation of a stack. The functions get the secret's ARN (its Ref), never a name.
"""

from __future__ import annotations

import re

import pytest

from local.template import Resolver
from sms_status.model import Provider
from tests.infra.test_template import FUNCTIONS, SECRETS, TRACKING, resources, template

RETAINED = {"OpenMarketSecret", "WooxySecret", "WwtSecret", "StatusTable"}
# Secrets Manager: "The secret name can contain ASCII letters, numbers, and the following characters: /_+=.@-",
# and AWS advises against a name ending in a hyphen followed by six characters (it looks like an ARN suffix).
SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")


def resolve_name(secret: str, stack: str, stack_uuid: str, given: str = "") -> str:
    parameters = {name: str(spec.get("Default", "")) for name, spec in template()["Parameters"].items()}
    parameters[f"{secret.removesuffix('Secret')}SecretName"] = given
    resolver = Resolver(template(), parameters, {})
    resolver.PSEUDO = {
        **Resolver.PSEUDO,
        "AWS::StackName": stack,
        "AWS::StackId": f"arn:aws:cloudformation:us-east-1:123456789012:stack/{stack}/{stack_uuid}",
    }
    return resolver.resolve(resources()[secret]["Properties"]["Name"])


def test_what_the_stack_keeps_on_deletion_is_exactly_the_secrets_and_the_status_table() -> None:
    retained = {name for name, body in resources().items() if body.get("DeletionPolicy") == "Retain"}
    assert retained == RETAINED
    # Every retained resource with a name gets one the next creation does not reuse (the table's is generated).
    assert "TableName" not in resources()["StatusTable"]["Properties"]


@pytest.mark.parametrize("secret", sorted(SECRETS.values()))
def test_a_retained_secret_gets_a_new_name_with_every_creation_of_the_stack(secret: str) -> None:
    first = resolve_name(secret, "sms-status", "1a2b3c4d-0000-11ef-8000-0a1b2c3d4e5f")
    again = resolve_name(secret, "sms-status", "9f8e7d6c-0000-11ef-8000-0a1b2c3d4e5f")
    other_stack = resolve_name(secret, "sms-status-staging", "1a2b3c4d-0000-11ef-8000-0a1b2c3d4e5f")
    provider = secret.removesuffix("Secret").lower()
    assert first == f"sms-status/{provider}-1a2b3c4d"
    assert again != first  # the same stack created again after `sam delete`
    assert other_stack != first  # a second stack in the account
    for name in (first, again, other_stack):
        assert SECRET_NAME.fullmatch(name)
        assert not re.search(r"-[A-Za-z0-9]{6}$", name)


@pytest.mark.parametrize("secret", sorted(SECRETS.values()))
def test_a_given_name_is_used_as_is(secret: str) -> None:
    # To keep the name an existing stack's secret already has (changing it replaces the secret).
    provider = secret.removesuffix("Secret").lower()
    assert resolve_name(secret, "sms-status", "1a2b3c4d-0000", given=f"sms-status/{provider}") == f"sms-status/{provider}"
    pattern = re.compile(template()["Parameters"][f"{secret.removesuffix('Secret')}SecretName"]["AllowedPattern"])
    assert pattern.fullmatch("")
    assert pattern.fullmatch(f"sms-status/{provider}")
    assert not pattern.fullmatch("sms status")


@pytest.mark.parametrize("provider", list(Provider))
def test_the_functions_find_their_secret_by_its_arn_never_by_a_name(provider: Provider) -> None:
    variable = f"{provider.name}_SECRET_NAME"
    functions = [FUNCTIONS[provider], TRACKING[provider], *(["WooxyChunkFunction"] if provider is Provider.WOOXY else [])]
    for function in functions:
        assert resources()[function]["Properties"]["Environment"]["Variables"][variable] == {"Ref": SECRETS[provider]}


def test_the_deploy_guide_says_what_is_kept_and_how_names_are_chosen() -> None:
    from tests.infra.test_template import ROOT

    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert "DeletionPolicy: Retain" in guide
    assert "first 8 hex" in guide


def test_the_api_has_one_name_in_its_definition_its_resource_and_its_alarms() -> None:
    from tests.infra.test_template import openapi

    name = {"Fn::Sub": "${AWS::StackName}-api"}
    assert openapi()["info"]["title"] == name
    assert resources()["SmsStatusApi"]["Properties"]["Name"] == name
    api_names = [
        dimension["Value"]
        for body in resources("AWS::CloudWatch::Alarm").values()
        for query in body["Properties"].get("Metrics", [])
        if "MetricStat" in query
        for dimension in query["MetricStat"]["Metric"].get("Dimensions", [])
        if dimension["Name"] == "ApiName"
    ]
    assert api_names
    assert all(value == name for value in api_names)
    dashboard = resources()["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert '"ApiName", "${AWS::StackName}-api"' in dashboard
    assert dashboard.count('"ApiName", ') == dashboard.count('"ApiName", "${AWS::StackName}-api"')

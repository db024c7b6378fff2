"""Only a provider's tracking function may send to its re-check queue.

A re-check message carries fields the service trusts (attempt, chain, since, not_before), so nobody else may put
one there, whatever their IAM policies allow. Each re-check queue has a queue policy that denies sqs:SendMessage
to every principal but its tracking function's role (and, for a DLQ redrive, RecheckRedrivePrincipalArn). The
policy is evaluated here as IAM would for the cases that matter: an explicit Deny wins over any Allow, and only
SendMessage is denied, so the account keeps administering the queue.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

import pytest

from local.template import Physical, Resolver
from tests.infra.test_template import resources, template

PROVIDERS = ["OpenMarket", "Wooxy", "Wwt"]
ACCOUNT = "123456789012"


def policy_of(queue: str, redrive: str = "") -> list[dict[str, Any]]:
    """The queue's policy statements, with the template's intrinsics resolved to example ARNs."""
    (policy,) = [
        body["Properties"] for body in resources("AWS::SQS::QueuePolicy").values() if body["Properties"]["Queues"] == [{"Ref": queue}]
    ]
    parameters = {name: str(spec.get("Default", "")) for name, spec in template()["Parameters"].items()}
    parameters["RecheckRedrivePrincipalArn"] = redrive
    physical = {}
    for logical, body in resources().items():
        if body["Type"] == "AWS::IAM::Role":
            physical[logical] = Physical(logical, {"Arn": f"arn:aws:iam::{ACCOUNT}:role/stack-{logical}"})
        if body["Type"] == "AWS::SQS::Queue":
            physical[logical] = Physical(logical, {"Arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:stack-{logical}"})
    return Resolver(template(), parameters, physical).resolve(policy["PolicyDocument"])["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def denied(statements: list[dict[str, Any]], principal: str, action: str) -> bool:
    """Whether an explicit Deny of the queue policy applies to this principal's request."""
    for statement in statements:
        if statement["Effect"] != "Deny" or not any(fnmatch.fnmatchcase(action, a) for a in as_list(statement["Action"])):
            continue
        conditions = statement.get("Condition", {})
        assert set(conditions) <= {"StringNotEquals"}, conditions
        not_equals = conditions.get("StringNotEquals", {})
        assert set(not_equals) <= {"aws:PrincipalArn"}, not_equals
        if principal not in as_list(not_equals.get("aws:PrincipalArn", [])):
            return True
    return False


def role_arn(role: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/stack-{role}"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_only_the_tracking_function_may_send_to_its_recheck_queue(provider: str) -> None:
    statements = policy_of(f"{provider}RecheckQueue")
    own = role_arn(f"{provider}TrackingFunctionRole")
    assert not denied(statements, own, "sqs:SendMessage")
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert allows
    assert all(s["Principal"] == {"AWS": own} and as_list(s["Action"]) == ["sqs:SendMessage"] for s in allows)
    others = [role_arn(f"{other}TrackingFunctionRole") for other in PROVIDERS if other != provider] + [
        role_arn("WooxyBulkFunctionRole"),
        f"arn:aws:iam::{ACCOUNT}:role/Admin",
        f"arn:aws:iam::{ACCOUNT}:root",
    ]
    for principal in others:
        assert denied(statements, principal, "sqs:SendMessage"), principal
    # The account keeps administering the queue: nothing but SendMessage (SendMessageBatch is authorised by it) is denied.
    for action in ("sqs:SetQueueAttributes", "sqs:DeleteQueue", "sqs:PurgeQueue", "sqs:ReceiveMessage", "sqs:GetQueueAttributes"):
        assert not denied(statements, f"arn:aws:iam::{ACCOUNT}:root", action), action
        assert not denied(statements, f"arn:aws:iam::{ACCOUNT}:role/Admin", action), action


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_redrive_principal_may_send_only_when_given(provider: str) -> None:
    operator = f"arn:aws:iam::{ACCOUNT}:role/Operator"
    assert denied(policy_of(f"{provider}RecheckQueue"), operator, "sqs:SendMessage")
    statements = policy_of(f"{provider}RecheckQueue", redrive=operator)
    assert not denied(statements, operator, "sqs:SendMessage")
    assert not denied(statements, role_arn(f"{provider}TrackingFunctionRole"), "sqs:SendMessage")
    assert denied(statements, f"arn:aws:iam::{ACCOUNT}:role/Admin", "sqs:SendMessage")


def test_every_recheck_queue_and_no_other_has_a_send_policy() -> None:
    guarded = {body["Properties"]["Queues"][0]["Ref"] for body in resources("AWS::SQS::QueuePolicy").values()}
    # And the webhook DLQ, whose policy lets EventBridge dead-letter for the webhook rule only (test_webhooks.py).
    assert guarded == {f"{provider}RecheckQueue" for provider in PROVIDERS} | {"WebhookDeadLetterQueue"}
    # Senders reach the tracking queues through their own IAM grants (Outputs *TrackingQueueArn, docs/queue.md).
    pattern = template()["Parameters"]["RecheckRedrivePrincipalArn"]["AllowedPattern"]
    assert re.fullmatch(pattern, "")
    assert re.fullmatch(pattern, f"arn:aws:iam::{ACCOUNT}:role/Operator")
    assert not re.fullmatch(pattern, "*")

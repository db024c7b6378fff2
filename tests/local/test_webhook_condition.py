"""The webhook's resources exist only with a WebhookUrl, in the local stack as in CloudFormation (resource
Conditions are honoured). A module of its own: each test starts moto, which must not overlap another stack."""

from __future__ import annotations

from pathlib import Path

from local.stack import LocalAws
from local.webhooks import read_route

CONDITIONAL = """
Parameters:
  Url:
    Type: String
    Default: ""
Conditions:
  HasUrl: !Not [!Equals [!Ref Url, ""]]
Resources:
  Always:
    Type: AWS::SQS::Queue
  OnlyWithUrl:
    Type: AWS::SQS::Queue
    Condition: HasUrl
  SecretWithUrl:
    Type: AWS::SecretsManager::Secret
    Condition: HasUrl
"""


def test_a_resource_whose_condition_is_false_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(CONDITIONAL)
    aws = LocalAws({}, {}, template_path=path).start()
    try:
        assert set(aws.queues) == {"Always"}
        assert aws.notes == []  # no "secret has no local value" for a secret that does not exist
    finally:
        aws.stop()
    aws = LocalAws({"Url": "https://example.com/"}, {"SecretWithUrl": "plain text"}, template_path=path).start()
    try:
        assert set(aws.queues) == {"Always", "OnlyWithUrl"}
        secret = aws.client("secretsmanager").get_secret_value(SecretId=aws.physical["SecretWithUrl"].ref)
        assert secret["SecretString"] == "plain text"  # a plain-text secret is stored as is, not JSON-quoted
    finally:
        aws.stop()


def test_without_a_url_the_local_stack_has_no_webhook() -> None:
    aws = LocalAws({}, {}).start()
    try:
        assert read_route(aws) is None
        assert not any(name.startswith("Webhook") for name in aws.queues)
        assert not any("webhook" in note.lower() for note in aws.notes)
    finally:
        aws.stop()

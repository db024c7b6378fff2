"""local.stack.LocalAws built from small templates: S3 buckets, STANDARD state machines, shared interpreter clients."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.lambda_routing import route_lambda_invocations, wait_for_execution
from local.stack import LocalAws
from local.template import ACCOUNT, STACK, LocalSetupError

BUCKETS = """
Parameters:
  RetentionDays:
    Type: Number
    Default: 3
Resources:
  JobData:
    Type: AWS::S3::Bucket
    Properties:
      PublicAccessBlockConfiguration:
        BlockPublicAcls: true
        BlockPublicPolicy: true
        IgnorePublicAcls: true
        RestrictPublicBuckets: true
      LifecycleConfiguration:
        Rules:
          - Id: expire-job-data
            Status: Enabled
            Prefix: jobs/
            ExpirationInDays: !Ref RetentionDays
            AbortIncompleteMultipartUpload:
              DaysAfterInitiation: 1
  Named:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub ${AWS::StackName}-named-${AWS::AccountId}
  JobDataPolicy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref JobData
      PolicyDocument:
        Statement:
          - Effect: Deny
            Principal: "*"
            Action: s3:*
            Resource: !Sub ${JobData.Arn}/*
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      Type: STANDARD
      Definition:
        StartAt: Where
        States:
          Where:
            Type: Pass
            Result:
              Bucket: ${Bucket}
              Arn: ${BucketArn}
              Domain: ${Domain}
            ResultPath: $.found
            End: true
      DefinitionSubstitutions:
        Bucket: !Ref JobData
        BucketArn: !GetAtt JobData.Arn
        Domain: !GetAtt JobData.RegionalDomainName
"""


@pytest.fixture
def stack(tmp_path: Path):
    path = tmp_path / "template.yaml"
    path.write_text(BUCKETS)
    aws = LocalAws({}, {}, template_path=path).start()
    try:
        yield aws
    finally:
        aws.stop()


def test_every_bucket_is_created_with_its_lifecycle_and_public_access_block(stack: LocalAws):
    derived = f"{STACK}-jobdata"
    assert stack.buckets == {"JobData": derived, "Named": f"{STACK}-named-{ACCOUNT}"}
    s3 = stack.client("s3")
    assert {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]} == set(stack.buckets.values())
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=derived)["Rules"]
    assert rule == {
        "ID": "expire-job-data",
        "Status": "Enabled",
        "Filter": {"Prefix": "jobs/"},
        "Expiration": {"Days": 3},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    block = s3.get_public_access_block(Bucket=derived)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True)


def test_bucket_ref_and_attributes_reach_a_standard_state_machine(stack: LocalAws):
    sfn = stack.client("stepfunctions")
    arn = stack.state_machines["Machine"]
    assert sfn.describe_state_machine(stateMachineArn=arn)["type"] == "STANDARD"
    started = sfn.start_execution(stateMachineArn=arn, name="local-stack-test", input="{}")
    described = wait_for_execution(sfn, started["executionArn"], timeout=30)
    assert described["status"] == "SUCCEEDED"
    bucket = f"{STACK}-jobdata"
    assert json.loads(described["output"])["found"] == {
        "Bucket": bucket,
        "Arn": f"arn:aws:s3:::{bucket}",
        "Domain": f"{bucket}.s3.us-east-1.amazonaws.com",
    }


def test_a_definition_placeholder_without_a_substitution_stops_the_build(tmp_path: Path):
    path = tmp_path / "template.yaml"
    path.write_text(BUCKETS.replace("        Domain: !GetAtt JobData.RegionalDomainName\n", ""))
    with pytest.raises(LocalSetupError, match=r"Machine: .*\$\{Domain\}"):
        LocalAws({}, {}, template_path=path).start()


def test_an_invalid_bucket_name_is_a_setup_error(tmp_path: Path):
    path = tmp_path / "template.yaml"
    path.write_text("Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: Not_Valid\n")
    with pytest.raises(LocalSetupError, match="not a valid S3 bucket name"):
        LocalAws({}, {}, template_path=path).start()


def test_the_interpreter_shares_one_client_per_service_while_routing_is_active():
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval import resource_eval_s3
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    with route_lambda_invocations({}):
        first = lambda_eval_utils.boto_client_for(region="us-east-1", service="lambda", state_credentials=None)
        assert lambda_eval_utils.boto_client_for(region="us-east-1", service="lambda", state_credentials=object()) is first
        assert resource_eval_s3.boto_client_for(region="us-east-1", service="s3") is not first
    assert lambda_eval_utils.boto_client_for is boto_client_for
    assert resource_eval_s3.boto_client_for is boto_client_for
    assert first.meta.service_model.service_name == "lambda"


QUEUE_CONSUMER = """
Resources:
  WooxyTrackingQueue:
    Type: AWS::SQS::Queue
  WooxyRecheckQueue:
    Type: AWS::SQS::Queue
  WooxyTrackingFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/wooxy_tracking/
      Handler: app.lambda_handler
      Runtime: python3.13
      Events:
        RecheckQueue:
          Type: SQS
          Properties:
            Queue: !GetAtt WooxyRecheckQueue.Arn
            BatchSize: 10
        TrackingQueue:
          Type: SQS
          Properties:
            Queue: !GetAtt WooxyTrackingQueue.Arn
            BatchSize: 100
            MaximumBatchingWindowInSeconds: 2
"""


def test_a_providers_tracking_queue_is_found_by_the_provider_name(tmp_path: Path):
    """`make enqueue PROVIDER=wooxy` finds the senders' queue consumed by functions/wooxy_tracking/ (not its re-check queue)."""
    path = tmp_path / "template.yaml"
    path.write_text(QUEUE_CONSUMER)
    aws = LocalAws({}, {}, template_path=path).start()
    try:
        mapping = aws.queue_for("wooxy")
        assert mapping is not None
        assert (mapping.function.short_name, mapping.event, mapping.batch_size) == ("wooxy_tracking", "TrackingQueue", 100)
        assert mapping.queue_url.endswith("WooxyTrackingQueue")
        assert aws.queue_for("wwt") is None
    finally:
        aws.stop()

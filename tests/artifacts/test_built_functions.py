"""The built artefacts, as Lambda runs them: each function from .aws-sam/build, imported in a fresh
interpreter whose path holds only the function, the built layer (Lambda's /opt/python) and boto3 (which the
Lambda runtime provides), answering an events/ event against a sandbox. Secrets come from a moto server on
127.0.0.1 over real HTTP, through the local Parameters and Secrets extension (as Lambda's extension serves them).

`make test` runs `sam build` first; run it before this file when using pytest alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from local.sandboxes import openmarket, wooxy, wwt
from local.secrets_extension import SecretsExtension

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
LAYER = BUILD / "SharedLayer" / "python"
SITE = Path(boto3.__file__).resolve().parents[1]
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py")  # what /var/runtime offers

DRIVER = """
import json, sys
sys.path[:0] = sys.argv[1:4]
import app, aws_lambda_powertools, sms_status, urllib3
layer = sys.argv[2]
for module in (aws_lambda_powertools, sms_status, urllib3):
    assert module.__file__.startswith(layer), (module.__name__, module.__file__)
class Context:
    function_name, memory_limit_in_mb, aws_request_id = "built", 512, "req-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:built"
    def get_remaining_time_in_millis(self): return 25000
event = json.load(open(sys.argv[4]))
print("RESPONSE " + json.dumps(app.lambda_handler(event, Context())))
print("LOADED " + json.dumps(sorted(name for name in ("boto3", "botocore.session", "botocore.client") if name in sys.modules)))
"""


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory):
    if not (LAYER / "sms_status").is_dir():
        pytest.fail("no built layer: run `make build` (make test does) before this test")
    runtime = tmp_path_factory.mktemp("var-runtime")
    for name in RUNTIME_PACKAGES:
        (runtime / name).symlink_to(SITE / name)
    return runtime


@pytest.fixture(scope="module")
def moto_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


SESSION_TOKEN = "built-session"
EXTENSION: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def secrets_extension(moto_server):
    """The Parameters and Secrets extension's endpoint, reading moto's server: what the functions read secrets from."""
    client = lambda: boto3.client("secretsmanager", endpoint_url=moto_server, region_name="us-east-1")  # noqa: E731
    with SecretsExtension(token=SESSION_TOKEN, client=client) as extension:
        EXTENSION["port"] = extension.port
        yield extension


def lambda_env(moto_server: str) -> dict[str, str]:
    """What every built function gets: a PATH, fake credentials, AWS at moto's server (over HTTP) and the secrets
    extension's port."""
    return {
        "PATH": os.environ["PATH"],
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_DEFAULT_REGION": "us-east-1",
        "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(EXTENSION["port"]),
    }


def create_table(moto_server: str, name: str, key: str) -> None:
    """An on-demand table with one string hash key, in moto's server (as the template declares ours)."""
    boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def run_built(function: str, event_file: str | Path, env: dict[str, str], runtime: Path, loaded: list | None = None) -> dict:
    """The built function answering an event: a file under events/ (or any path). `loaded` receives which of boto3
    and botocore's session and client the process had imported by then (Powertools imports botocore's package
    itself, to tag the SDK's user agent)."""
    code_dir = BUILD / function
    args = [sys.executable, "-I", "-S", "-c", DRIVER, str(code_dir), str(LAYER), str(runtime), str(ROOT / "events" / event_file)]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    if loaded is not None:
        loaded.extend(json.loads(next(line for line in result.stdout.splitlines() if line.startswith("LOADED ")).removeprefix("LOADED ")))
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESPONSE "))
    return json.loads(line.removeprefix("RESPONSE "))


@pytest.mark.parametrize(
    ("function", "prefix", "sandbox_module", "event_file", "seed"),
    [
        ("OpenMarketFunction", "OPENMARKET", openmarket, "openmarket/get_message.json", ("12004-0328K-1232U-18C21", [(0, 4)], {})),
        ("WooxyFunction", "WOOXY", wooxy, "wooxy/get_message.json", ("5d91537bd132fdf45916520a", [(0, "delivered")], {})),
        ("WwtFunction", "WWT", wwt, "wwt/get_reference.json", ("211", [(0, "delivered")], {"reference": "ext19"})),
    ],
)
def test_built_function_answers_an_event(function, prefix, sandbox_module, event_file, seed, runtime_dir, moto_server, request):
    sandbox = request.getfixturevalue(f"{prefix.lower()}_sandbox")
    message_id, steps, fields = seed
    sandbox.add_message(message_id, steps=steps, **fields)
    secrets = boto3.client("secretsmanager", endpoint_url=moto_server, region_name="us-east-1")
    name = f"built/{prefix.lower()}"
    secrets.create_secret(Name=name, SecretString=json.dumps(sandbox_module.DEFAULT_CREDENTIALS))
    env = {
        **lambda_env(moto_server),
        "POWERTOOLS_SERVICE_NAME": function,
        f"{prefix}_BASE_URL": sandbox.base_url,
        f"{prefix}_SECRET_NAME": name,
    }
    loaded: list[str] = []
    response = run_built(function, event_file, env, runtime_dir, loaded)
    body = json.loads(response["body"])
    assert response["statusCode"] == 200, body
    assert (body["status"], body["final"]) == ("delivered", True)
    assert len(sandbox.requests) == 1
    assert loaded == []  # the secret came through the extension: no AWS SDK on a lookup's cold start


def test_built_tracked_function_reads_the_table(runtime_dir, moto_server):
    """The fourth function: GET /tracked/... from the status table, over HTTP to moto's DynamoDB."""
    create_table(moto_server, "built-status", key="pk")
    env = {
        **lambda_env(moto_server),
        "POWERTOOLS_SERVICE_NAME": "tracked",
        "STATUS_TABLE_NAME": "built-status",
    }
    response = run_built("TrackedFunction", "tracked/get_message.json", env, runtime_dir)
    body = json.loads(response["body"])
    assert response["statusCode"] == 404, body
    assert body["error"]["message"] == "this message is not tracked"


def test_built_bulk_function_answers_a_job_from_its_table_and_bucket(runtime_dir, moto_server):
    """The bulk function: GET /wooxy/bulk-jobs/{job_id} of a finished job, over HTTP to moto's DynamoDB and S3."""
    event = json.loads((ROOT / "events" / "wooxy" / "get_bulk_job.json").read_text())
    job_id = event["pathParameters"]["job_id"]
    create_table(moto_server, "built-jobs", key="job_id")
    item = {"job_id": job_id, "state": "succeeded", "total": 4, "chunk_count": 1, "done": 4, "created_at": "2026-11-29T10:00:00.000Z"}
    item["owner"] = event["requestContext"]["identity"]["userArn"]  # a job answers its owner only
    item |= {"counts": {"delivered": 4}, "finished_at": "2026-11-29T10:00:01.000Z"}
    boto3.resource("dynamodb", endpoint_url=moto_server, region_name="us-east-1").Table("built-jobs").put_item(Item=item)
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(Bucket="built-bulk")
    env = {
        **lambda_env(moto_server),
        "POWERTOOLS_SERVICE_NAME": "wooxy-bulk",
        "BULK_BUCKET_NAME": "built-bulk",
        "BULK_JOBS_TABLE_NAME": "built-jobs",
    }
    response = run_built("WooxyBulkFunction", "wooxy/get_bulk_job.json", env, runtime_dir)
    body = json.loads(response["body"])
    assert response["statusCode"] == 200, body
    assert (body["job_id"], body["state"], body["counts"]) == (job_id, "succeeded", {"delivered": 4})
    assert f"/built-bulk/jobs/{job_id}/results.jsonl" in body["results_url"] or "built-bulk.s3" in body["results_url"]


def provider_secret(moto_server: str, prefix: str, sandbox_module) -> str:
    """The provider's credentials as a secret in moto's server (once per module's server); its name."""
    secrets = boto3.client("secretsmanager", endpoint_url=moto_server, region_name="us-east-1")
    name = f"built/{prefix.lower()}-queue-path"
    if not secrets.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]:
        secrets.create_secret(Name=name, SecretString=json.dumps(sandbox_module.DEFAULT_CREDENTIALS))
    return name


@pytest.mark.parametrize(
    ("function", "prefix", "sandbox_module"),
    [
        ("OpenMarketTrackingFunction", "OPENMARKET", openmarket),
        ("WooxyTrackingFunction", "WOOXY", wooxy),
        ("WwtTrackingFunction", "WWT", wwt),
    ],
)
def test_built_tracking_function_reports_a_malformed_record(function, prefix, sandbox_module, runtime_dir, moto_server, request, tmp_path):
    """A tracking function answers an SQS batch: a record that is not a tracking message is a batch item failure
    (so SQS retries it, then moves it to the DLQ), reported by its message id, without a provider call."""
    sandbox = request.getfixturevalue(f"{prefix.lower()}_sandbox")
    short = prefix.lower()
    table = f"built-{short}-status"
    create_table(moto_server, table, key="pk")
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    recheck_url = sqs.create_queue(QueueName=f"built-{short}-recheck")["QueueUrl"]
    recheck_arn = sqs.get_queue_attributes(QueueUrl=recheck_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = boto3.client("events", endpoint_url=moto_server, region_name="us-east-1").create_event_bus(Name=f"built-{short}-status")
    record = json.loads((ROOT / "events" / "sqs" / "wwt_mixed_with_malformed.json").read_text())["Records"][1]
    assert record["body"] == "not json"
    record["eventSourceARN"] = f"arn:aws:sqs:us-east-1:123456789012:built-{short}-tracking"
    event_file = tmp_path / "batch.json"
    event_file.write_text(json.dumps({"Records": [record]}))
    env = {
        **lambda_env(moto_server),
        "POWERTOOLS_SERVICE_NAME": f"{short}-tracking",
        f"{prefix}_BASE_URL": sandbox.base_url,
        f"{prefix}_SECRET_NAME": provider_secret(moto_server, prefix, sandbox_module),
        "STATUS_TABLE_NAME": table,
        "EVENT_BUS_NAME": bus["EventBusArn"].rsplit("/", 1)[1],
        "RECHECK_QUEUE_URL": recheck_url,
        "RECHECK_QUEUE_ARN": recheck_arn,
        "BATCH_DEADLINE": "30",
    }
    response = run_built(function, event_file, env, runtime_dir)
    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert sandbox.requests == []


def test_built_chunk_function_looks_up_a_bulk_chunk_and_stores_its_reports(runtime_dir, moto_server, wooxy_sandbox):
    """The bulk state machine's chunk task: one Wooxy request against the sandbox, the reports in S3, the counts
    added to the job's item in DynamoDB, and a count as the answer."""
    chunk = json.loads((ROOT / "events" / "stepfunctions" / "wooxy_bulk_chunk.json").read_text())["bulk_chunk"]
    for message_id in chunk["ids"]:
        wooxy_sandbox.add_message(message_id, steps=[(0, "delivered")])
    create_table(moto_server, "built-chunk-jobs", key="job_id")
    jobs = boto3.resource("dynamodb", endpoint_url=moto_server, region_name="us-east-1").Table("built-chunk-jobs")
    jobs.put_item(Item={"job_id": chunk["job_id"], "state": "running", "total": 4, "chunk_count": 1, "done": 0, "counts": {}})
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    s3.create_bucket(Bucket="built-chunk-bulk")
    env = {
        **lambda_env(moto_server),
        "POWERTOOLS_SERVICE_NAME": "wooxy-chunks",
        "WOOXY_BASE_URL": wooxy_sandbox.base_url,
        "WOOXY_SECRET_NAME": provider_secret(moto_server, "WOOXY", wooxy),
        "BULK_BUCKET_NAME": "built-chunk-bulk",
        "BULK_JOBS_TABLE_NAME": "built-chunk-jobs",
    }
    response = run_built("WooxyChunkFunction", "stepfunctions/wooxy_bulk_chunk.json", env, runtime_dir)
    assert response == {"count": 4}
    assert len(wooxy_sandbox.requests) == 1  # one Wooxy request for the chunk's 4 ids
    body = s3.get_object(Bucket="built-chunk-bulk", Key=f"jobs/{chunk['job_id']}/chunks/{chunk['index']:05d}.jsonl")["Body"].read()
    reports = [json.loads(line) for line in body.decode().splitlines()]
    assert [(r["id"], r["status"]) for r in reports] == [(message_id, "delivered") for message_id in chunk["ids"]]
    item = jobs.get_item(Key={"job_id": chunk["job_id"]})["Item"]
    assert (item["done"], item["counts"]) == (4, {"delivered": 4})

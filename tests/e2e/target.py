"""What the black-box suite talks to: `make run` on 127.0.0.1 (local) or a deployed stack (deployed).

A `Target` knows the API's base URL, sends SigV4-signed requests (botocore's `SigV4Auth`; locally with fake
credentials, which the local server does not check), puts messages on a provider's tracking queue the way a
sender does (SQS SendMessage), and holds the ids to ask about. `exact` says whether the expected statuses are
known (local: the suite seeds the sandboxes) or only the contract's shape can be asserted (deployed: the real
providers answer for ids the caller chose, see docs/deploy.md, "End-to-end tests").
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.local.harness import wait_for

PROVIDERS = ("openmarket", "wooxy", "wwt")
STATUSES = frozenset({"pending", "sent", "delivered", "undelivered", "expired", "rejected", "failed", "unknown", "not_found"})
ERROR_CODES = frozenset(
    {"invalid_request", "provider_error", "provider_timeout", "provider_unavailable", "credentials_error", "internal_error"}
)
REPORT_KEYS = frozenset(
    {
        "provider",
        "id",
        "status",
        "final",
        "provider_status",
        "retryable",
        "submitted_at",
        "sent_at",
        "delivered_at",
        "recipient",
        "price",
        "currency",
        "checked_at",
    }
)
JOB_KEYS = frozenset({"job_id", "provider", "state", "total", "done", "counts", "created_at", "finished_at", "results_url"})
QUEUE_OUTPUTS = {"openmarket": "OpenMarketTrackingQueueUrl", "wooxy": "WooxyTrackingQueueUrl", "wwt": "WwtTrackingQueueUrl"}


@dataclass(frozen=True)
class Case:
    """One id to ask about, and the status it must have (None: any status the contract allows)."""

    id: str
    status: str | None = None


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None for an empty body

    def __repr__(self) -> str:  # what an assertion shows
        return f"Response({self.status}, {json.dumps(self.body)[:2000]})"


@dataclass
class Target:
    kind: str  # "local" or "deployed"
    base_url: str  # no trailing slash; deployed: the ApiUrl output, stage included
    region: str
    credentials: Credentials
    queue_urls: dict[str, str]  # provider -> tracking queue URL
    sqs: Any  # a boto3 SQS client that reaches those queues
    lookups: dict[str, list[Case]]  # provider -> ids for the single-id and batch routes
    wwt_references: list[Case]
    unknown_wwt_id: str
    track: tuple[str, Case]  # (provider, id) followed through the queue until final
    track_timeout: float
    job_timeout: float = 180.0
    # Local only: the sandboxes' control URLs (provider -> base URL), for seeding and moving their clocks.
    sandboxes: dict[str, str] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        """Whether expected statuses are known (local: seeded) or only the contract's shape is (deployed)."""
        return self.kind == "local"

    # ---- HTTP ------------------------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + path

    def request(self, method: str, path: str, body: Any = None, *, sign: bool = True, raw: bytes | None = None) -> Response:
        """One request to the API: JSON `body` (or `raw` bytes), SigV4-signed for execute-api unless sign=False."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"} if data is not None else {}
        url = self.url(path)
        if sign:
            signed = AWSRequest(method=method, url=url, data=data, headers=headers)
            SigV4Auth(self.credentials, "execute-api", self.region).add_auth(signed)
            headers = dict(signed.headers.items())
        return fetch(method, url, data, headers)

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Response:
        return self.request("POST", path, body)

    def wait(self, condition: Callable[[], Any], timeout: float, what: str, interval: float = 1.0) -> Any:
        return wait_for(condition, timeout, what, interval)

    # ---- the queue path ---------------------------------------------------------------------------------------
    def enqueue(self, provider: str, body: dict[str, Any]) -> str:
        """Put a tracking message on the provider's queue, as a sender does; returns the SQS message id."""
        return self.sqs.send_message(QueueUrl=self.queue_urls[provider], MessageBody=json.dumps(body))["MessageId"]

    # ---- the sandboxes (local only) ---------------------------------------------------------------------------
    def sandbox(self, provider: str, control: str, body: Any) -> None:
        answer = fetch("POST", f"{self.sandboxes[provider]}/_sandbox/{control}", json.dumps(body).encode(), {})
        assert answer.status == 200, answer


def fetch(method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 60) -> Response:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310 - the target's URL
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - the target's URL
            return Response(answer.status, {k.lower(): v for k, v in answer.headers.items()}, parse(answer.read()))
    except urllib.error.HTTPError as error:
        return Response(error.code, {k.lower(): v for k, v in error.headers.items()}, parse(error.read()))


def fetch_text(url: str, timeout: float = 60) -> str:
    """A presigned URL (a bulk job's results file): fetched as it is, unsigned."""
    with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - the service's presigned URL
        return answer.read().decode()


def parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def path_id(value: str) -> str:
    """An id as a path segment (percent-encoded; the API decodes it once)."""
    return quote(value, safe="")


# ---- the deployed target ------------------------------------------------------------------------------------------
DEFAULT_IDS = {  # the providers' documented example ids: real providers answer not_found unless they are yours
    "openmarket": "12004-0328K-1232U-18C21",
    "wooxy": "5d91537bd132fdf45916520a",
    "wwt": "211",
}


def env_list(env: Mapping[str, str], name: str, default: str) -> list[str]:
    return [item.strip() for item in env.get(name, default).split(",") if item.strip()]


def deployed_target(stack_name: str, env: Mapping[str, str] = os.environ) -> Target:
    """A target from a deployed stack's CloudFormation Outputs, with the caller's default AWS credentials."""
    import boto3

    session = boto3.session.Session()
    if session.region_name is None:
        raise RuntimeError("no AWS region: set AWS_DEFAULT_REGION (or a profile with a region)")
    credentials = session.get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials found by the default chain (environment, profile, SSO, instance role)")
    stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
    missing = [key for key in ("ApiUrl", *QUEUE_OUTPUTS.values()) if key not in outputs]
    if missing:
        raise RuntimeError(f"stack {stack_name} has no output(s) {', '.join(missing)}")
    base_url = outputs["ApiUrl"].rstrip("/")
    host = urlsplit(base_url).hostname or ""
    # <api-id>.execute-api.<region>.amazonaws.com: sign for the API's own region, whatever the session's is
    region = host.split(".")[2] if ".execute-api." in host else session.region_name
    lookups = {provider: [Case(i) for i in env_list(env, f"E2E_{provider.upper()}_IDS", DEFAULT_IDS[provider])] for provider in PROVIDERS}
    track_provider = env.get("E2E_TRACK_PROVIDER", "wwt").strip()
    if track_provider not in PROVIDERS:
        raise RuntimeError(f"E2E_TRACK_PROVIDER must be one of {', '.join(PROVIDERS)}")
    track_id = env.get("E2E_TRACK_ID", "").strip() or lookups[track_provider][0].id
    return Target(
        kind="deployed",
        base_url=base_url,
        region=region,
        credentials=credentials.get_frozen_credentials(),
        queue_urls={provider: outputs[key] for provider, key in QUEUE_OUTPUTS.items()},
        sqs=session.client("sqs"),
        lookups=lookups,
        wwt_references=[Case(r) for r in env_list(env, "E2E_WWT_REFERENCES", "extid19")],
        unknown_wwt_id=env.get("E2E_UNKNOWN_WWT_ID", "99999999999999999999").strip(),
        track=(track_provider, Case(track_id)),
        track_timeout=float(env.get("E2E_TRACK_TIMEOUT", "300")),
        job_timeout=float(env.get("E2E_JOB_TIMEOUT", "300")),
    )

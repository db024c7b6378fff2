"""Shared fixtures. AWS is always moto (fake credentials below, set before anything creates a client);
providers are the sandboxes in `local/sandboxes`, on ephemeral ports of 127.0.0.1."""

from __future__ import annotations

import json
import os

import pytest

# Never a real account: moto intercepts every AWS call made with these.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_METRICS_NAMESPACE="SmsStatusTest",
    POWERTOOLS_SERVICE_NAME="sms-status-test",
    POWERTOOLS_DEV="false",
)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture
def openmarket_sandbox():
    from local.sandboxes.openmarket import OpenMarketSandbox

    with OpenMarketSandbox(hang=10) as sandbox:
        yield sandbox


@pytest.fixture
def wooxy_sandbox():
    from local.sandboxes.wooxy import WooxySandbox

    with WooxySandbox(hang=10) as sandbox:
        yield sandbox


@pytest.fixture
def wwt_sandbox():
    from local.sandboxes.wwt import WwtSandbox

    with WwtSandbox(hang=10) as sandbox:
        yield sandbox


@pytest.fixture
def provider_secrets(monkeypatch, openmarket_sandbox, wooxy_sandbox, wwt_sandbox):
    """moto (active for the test) holding each provider's secret as `sms-status/<provider>`, served by the local
    secrets extension (what the functions read), and each function pointed at its sandbox with short timeouts.
    Each test loads its handlers anew (`tests.apigw.load_handler`): a cold start reads this environment; the
    cached secrets are cleared on both sides. Yields the Secrets Manager client (tests rotate or break secrets
    with it)."""
    import boto3
    from moto import mock_aws

    from local.sandboxes import openmarket, wooxy, wwt
    from local.secrets_extension import SecretsExtension
    from sms_status.credentials import EXTENSION_PORT_VARIABLE, clear_caches

    sandboxes = {"OPENMARKET": (openmarket, openmarket_sandbox), "WOOXY": (wooxy, wooxy_sandbox), "WWT": (wwt, wwt_sandbox)}
    with mock_aws(), SecretsExtension(token=os.environ["AWS_SESSION_TOKEN"]) as extension:
        client = boto3.client("secretsmanager")
        for prefix, (module, sandbox) in sandboxes.items():
            name = f"sms-status/{prefix.lower()}"
            client.create_secret(Name=name, SecretString=json.dumps(module.DEFAULT_CREDENTIALS))
            monkeypatch.setenv(f"{prefix}_BASE_URL", sandbox.base_url)
            monkeypatch.setenv(f"{prefix}_SECRET_NAME", name)
        monkeypatch.setenv(EXTENSION_PORT_VARIABLE, str(extension.port))
        monkeypatch.setenv("PROVIDER_READ_TIMEOUT", "0.5")
        monkeypatch.setenv("PROVIDER_RETRIES", "1")
        clear_caches()
        yield client
        clear_caches()


@pytest.fixture
def full_backlog():
    """A port that accepts no connection: its one-slot backlog is taken, so a connect waits and times out."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    filler = socket.create_connection(server.getsockname(), timeout=1)
    try:
        yield server.getsockname()[1]
    finally:
        filler.close()
        server.close()


def eventually(condition, seconds: float) -> bool:
    """Polls `condition` until it holds or `seconds` pass (for what another thread does); its last value."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()

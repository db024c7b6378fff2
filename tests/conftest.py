"""Shared fixtures. AWS is always moto (fake credentials below, set before anything creates a client);
providers are the sandboxes in `local/sandboxes`, on ephemeral ports of 127.0.0.1."""

from __future__ import annotations

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

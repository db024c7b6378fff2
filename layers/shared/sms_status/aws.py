"""AWS clients with bounded calls. botocore's defaults (60 s to connect, 60 s per read, retries on top) would let
one stalled call outlive the function's timeout: then the whole SQS batch, records already done included, comes
back and counts towards the DLQ. Every call here ends within CONNECT + READ seconds per attempt, ATTEMPTS attempts
(botocore's standard retry mode: throttling and 5xx are retried with jittered backoff)."""

from __future__ import annotations

from functools import cache
from typing import Any

CONNECT_TIMEOUT = 2.0  # seconds; an AWS endpoint in the same region connects in milliseconds
READ_TIMEOUT = 5.0  # seconds per attempt; a DynamoDB, SQS or EventBridge answer takes tens of milliseconds
ATTEMPTS = 3  # the first try and two retries
# The worst case of one call: ATTEMPTS x (CONNECT + READ) plus botocore's backoff between attempts (< 2 x 20 s cap,
# in practice well under a second): the queue path keeps this much of the invocation in reserve.
WORST_CALL_SECONDS = ATTEMPTS * (CONNECT_TIMEOUT + READ_TIMEOUT) + 2.0


@cache
def _config() -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
        max_pool_connections=32,  # the queue path writes a batch's items from several threads
    )


def client(service: str) -> Any:
    import boto3

    return boto3.client(service, config=_config())

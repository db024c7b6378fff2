"""AWS clients with bounded calls. botocore's defaults (60 s to connect, 60 s per read, retries on top) would let
one stalled call outlive the function's timeout: then the whole SQS batch, records already done included, comes
back and counts towards the DLQ. Every call here ends within CONNECT + READ seconds per attempt, ATTEMPTS attempts
(botocore's standard retry mode: throttling and 5xx are retried with jittered backoff).

A caller with a tighter deadline (the inline bulk route answers within API Gateway's 29 s) passes a `CallBudget`
of its own and starts a call only when its `worst` still fits."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

CONNECT_TIMEOUT = 2.0  # seconds; an AWS endpoint in the same region connects in milliseconds
READ_TIMEOUT = 5.0  # seconds per attempt; a DynamoDB, SQS or EventBridge answer takes tens of milliseconds
ATTEMPTS = 3  # the first try and two retries
BACKOFF_ALLOWANCE = 2.0  # seconds: botocore's jittered backoff between attempts, in practice well under a second


@dataclass(frozen=True)
class CallBudget:
    """How long one call may take: connect and read timeouts per attempt, and attempts."""

    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    attempts: int = ATTEMPTS

    @property
    def worst(self) -> float:
        """Seconds one call can take at most (per socket read: a body that trickles in can take longer)."""
        backoff = BACKOFF_ALLOWANCE if self.attempts > 1 else 0.0
        return self.attempts * (self.connect_timeout + self.read_timeout) + backoff


# The worst case of one call with the module's bounds: the queue path keeps this much of the invocation in reserve.
WORST_CALL_SECONDS = CallBudget().worst


@cache
def _config(budget: CallBudget | None = None, signature_version: str | None = None) -> Any:
    """A client config for `budget`; None: the module's bounds as they are when first asked (tests shorten them)."""
    from botocore.config import Config

    budget = budget or CallBudget(CONNECT_TIMEOUT, READ_TIMEOUT, ATTEMPTS)
    return Config(
        connect_timeout=budget.connect_timeout,
        read_timeout=budget.read_timeout,
        retries={"total_max_attempts": budget.attempts, "mode": "standard"},
        max_pool_connections=32,  # the queue path writes a batch's items from several threads
        signature_version=signature_version,
    )


def client(service: str, budget: CallBudget | None = None, **kwargs: Any) -> Any:
    import boto3

    return boto3.client(service, config=_config(budget, "s3v4" if service == "s3" else None), **kwargs)


def resource(service: str, budget: CallBudget | None = None) -> Any:
    import boto3

    return boto3.resource(service, config=_config(budget))

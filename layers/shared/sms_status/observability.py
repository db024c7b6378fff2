"""The one place that creates the Logger and emits metrics; handlers and the layer import them from here.

Tracing is done by Lambda itself (`Tracing: Active` in the template), not by Powertools' Tracer:
the Tracer imports aws-xray-sdk, about 390 ms of cold start for subsegments we do not need.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger()
DEFAULT_NAMESPACE = "SmsStatus"


def count_lookups(provider: str, statuses: Iterable[str]) -> None:
    """One `Lookups` metric per (provider, normalized status): how providers' answers are distributed.

    Each (provider, status) pair needs its own dimension set, hence single_metric rather than one flush
    at the end of the invocation. The namespace comes from POWERTOOLS_METRICS_NAMESPACE (set in the template).
    """
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE
    try:
        for status, count in Counter(statuses).items():
            with single_metric(name="Lookups", unit=MetricUnit.Count, value=count, namespace=namespace) as metric:
                metric.add_dimension(name="provider", value=provider)
                metric.add_dimension(name="status", value=status)
    except Exception:  # a metric must never turn an answer into an error
        logger.warning("lookup metric not emitted", exc_info=True)

"""The one place that creates the Logger and emits metrics; handlers and the layer import them from here.

Tracing is done by Lambda itself (`Tracing: Active` in the template), not by Powertools' Tracer:
the Tracer imports aws-xray-sdk, about 390 ms of cold start for subsegments we do not need.

Every metric the code emits is declared in `METRICS` (name, unit, dimensions) and emitted through `emit`, which
refuses anything undeclared: the dashboard and the alarms in template.yaml are checked against this table by a
test, so a widget cannot watch a metric that nothing emits. Powertools adds a `service` dimension (the function's
POWERTOOLS_SERVICE_NAME) to each, and reads their namespace from POWERTOOLS_METRICS_NAMESPACE (the template's
Globals). No dimension ever holds a message id: one time series per provider and status.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger()
SERVICE_DIMENSION = "service"  # added by Powertools to every metric


@dataclass(frozen=True)
class MetricSpec:
    unit: MetricUnit
    dimensions: tuple[str, ...]  # besides `service`
    meaning: str


METRICS: dict[str, MetricSpec] = {
    "Lookups": MetricSpec(MetricUnit.Count, ("provider", "status"), "ids answered, per normalized status (API, bulk, queue)"),
    "LookupIds": MetricSpec(MetricUnit.Count, ("provider",), "ids asked of a provider (the error rate's denominator)"),
    "LookupErrors": MetricSpec(MetricUnit.Count, ("provider",), "ids whose lookup failed (outage, timeout, refusal, bad answer)"),
    "LookupLatency": MetricSpec(MetricUnit.Milliseconds, ("provider",), "time of one lookup call (one request, or a fan-out)"),
    "FinalOutcomes": MetricSpec(MetricUnit.Count, ("provider", "status"), "tracked messages that became final, per final status"),
    # Per provider only: percentiles (p50/p90/p99) are read per time series, and the outcome is in FinalOutcomes.
    "TimeToFinal": MetricSpec(MetricUnit.Seconds, ("provider",), "provider submit time (else tracking start) to final"),
    "BulkJobIds": MetricSpec(MetricUnit.Count, ("provider",), "distinct ids of a finished bulk job"),
    "BulkJobDuration": MetricSpec(MetricUnit.Seconds, ("provider",), "a bulk job's creation to its results file"),
    "BulkJobReports": MetricSpec(MetricUnit.Count, ("provider", "status"), "a finished bulk job's reports, per status"),
}


def emit(name: str, value: float, **dimensions: str) -> None:
    """One data point of a declared metric. A metric must never turn an answer into an error: failures are logged."""
    spec = METRICS[name]
    if set(dimensions) != set(spec.dimensions):
        raise ValueError(f"metric {name} takes dimensions {spec.dimensions}, got {sorted(dimensions)}")
    try:
        # single_metric: each dimension set is its own EMF document (one flush per data point).
        with single_metric(name=name, unit=spec.unit, value=value) as metric:
            for key in spec.dimensions:
                metric.add_dimension(name=key, value=dimensions[key])
    except Exception:
        logger.warning("metric not emitted", extra={"metric": name}, exc_info=True)


def count_lookups(provider: str, statuses: Iterable[str], *, asked: int, errors: int, latency_ms: float) -> None:
    """The metrics of one lookup call: ids per answered status, ids asked, ids that failed, how long it took."""
    for status, count in Counter(statuses).items():
        emit("Lookups", count, provider=provider, status=status)
    emit("LookupIds", asked, provider=provider)
    emit("LookupErrors", errors, provider=provider)  # zeros too: the error rate needs every period's denominator
    emit("LookupLatency", latency_ms, provider=provider)

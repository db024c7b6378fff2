"""Configuration: read from the environment once per cold start, into frozen values.

This is the one module that reads the environment; deep code receives these values. Each part is built once per
container by the code that needs it (`services.service_for`, `jobs.job_store`, `api.status_store`, the metrics
namespace below) and kept while the container is warm:
- `ProviderConfig`: a provider's base URL, secret, timeouts, fan-out (its API, tracking and chunk functions);
- `BulkConfig`: the bulk function's bucket, table, state machine and waits;
- `RuntimeConfig`: what every function may read (metrics namespace, the status table of the tracked route);
- `TrackingConfig`: a tracking function's queue path (status table, event bus, re-check queue, window, schedule).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from urllib.parse import urlsplit

from .http import HttpSettings
from .model import Provider

DEFAULT_BASE_URLS = {
    Provider.OPENMARKET: "https://smsc.openmarket.com",
    Provider.WOOXY: "https://api.wooxy.com",
    Provider.WWT: "https://api.wwt.world",
}
# OpenMarket's format is [DevelopmentEnvironment]/SMS/[Version0.0.0], at most 60 characters.
DEFAULT_USER_AGENT = "SmsStatus/SMS/1.0.0"
# WWT is a white-label of BSG, whose v1 API authenticates with this header (its public Python client, bsg-python).
DEFAULT_WWT_AUTH_HEADER = "X-API-KEY"
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 9110 token


class ConfigError(ValueError):
    """A missing or invalid setting; the message names the environment variable."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_base_url(url: str, name: str) -> str:
    """scheme://host[:port], no path: the documented paths are appended. `http` only for loopback."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{name} must look like https://host[:port], got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{name} must be scheme, host and optional port only (no path, query or credentials)")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"{name}: plain http is accepted only for loopback addresses; use https")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"{name} has an invalid port") from exc
    return f"{parts.scheme}://{parts.netloc}"


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be positive")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    provider: Provider
    base_url: str
    secret_name: str
    http: HttpSettings = field(default_factory=HttpSettings)
    secret_max_age: int = 300  # seconds a fetched secret is reused before Secrets Manager is asked again
    fan_out: int = 10  # concurrent provider requests for one batch call (OpenMarket and WWT)
    batch_deadline: float = 20.0  # seconds a whole batch may take; below the function timeout (25 s)
    openmarket_user_agent: str = DEFAULT_USER_AGENT
    wwt_auth_header: str = DEFAULT_WWT_AUTH_HEADER

    @classmethod
    def from_env(cls, provider: Provider, env: Mapping[str, str] | None = None) -> ProviderConfig:
        env = os.environ if env is None else env
        prefix = provider.name  # OPENMARKET, WOOXY, WWT
        base_url = validate_base_url(env.get(f"{prefix}_BASE_URL") or DEFAULT_BASE_URLS[provider], f"{prefix}_BASE_URL")
        secret_name = env.get(f"{prefix}_SECRET_NAME", "").strip()
        if not secret_name:
            raise ConfigError(f"{prefix}_SECRET_NAME is not set")
        http = HttpSettings(
            connect_timeout=_float(env, "PROVIDER_CONNECT_TIMEOUT", 3.0),
            read_timeout=_float(env, "PROVIDER_READ_TIMEOUT", 10.0),
            retries=_int(env, "PROVIDER_RETRIES", 2),
        )
        user_agent = env.get("OPENMARKET_USER_AGENT") or DEFAULT_USER_AGENT
        if len(user_agent) > 60 or not user_agent.isprintable():
            raise ConfigError("OPENMARKET_USER_AGENT must be printable and at most 60 characters (OpenMarket's limit)")
        auth_header = env.get("WWT_AUTH_HEADER") or DEFAULT_WWT_AUTH_HEADER
        if not HEADER_NAME.fullmatch(auth_header):
            raise ConfigError("WWT_AUTH_HEADER must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)")
        return cls(
            provider=provider,
            base_url=base_url,
            secret_name=secret_name,
            http=http,
            secret_max_age=_int(env, "SECRET_MAX_AGE", 300, minimum=1),
            fan_out=_int(env, "FAN_OUT", 10, minimum=1),
            batch_deadline=_float(env, "BATCH_DEADLINE", 20.0),
            openmarket_user_agent=user_agent,
            wwt_auth_header=auth_header,
        )


@dataclass(frozen=True, slots=True)
class BulkConfig:
    bucket: str
    table: str
    state_machine_arn: str = ""  # only the bulk function starts jobs
    retention_days: int = 7  # job data lives this long (the bucket's lifecycle rule and the table's TTL agree)
    inline_wait: float = 25.0  # POST /wooxy/status/bulk waits at most this long after the request arrived
    results_url_ttl: int = 900  # seconds a presigned results_url is valid (BulkResultsUrlTtl; signed anew on each GET)
    max_running_jobs: int = 4  # jobs running at once, stack-wide (BulkMaxRunningJobs)
    max_running_jobs_per_caller: int = 2  # jobs running at once per caller (BulkMaxRunningJobsPerCaller)
    results_endpoint: str | None = None  # local run only: presigned URLs point at the local S3 endpoint

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BulkConfig:
        env = os.environ if env is None else env
        missing = [name for name in ("BULK_BUCKET_NAME", "BULK_JOBS_TABLE_NAME") if not env.get(name, "").strip()]
        if missing:
            raise ConfigError(f"{', '.join(missing)} not set")
        return cls(
            bucket=env["BULK_BUCKET_NAME"].strip(),
            table=env["BULK_JOBS_TABLE_NAME"].strip(),
            state_machine_arn=env.get("BULK_STATE_MACHINE_ARN", "").strip(),
            retention_days=_int(env, "BULK_RETENTION_DAYS", 7, minimum=1),
            inline_wait=_float(env, "BULK_INLINE_WAIT", 25.0),
            results_url_ttl=_results_url_ttl(env),
            max_running_jobs=_int(env, "BULK_MAX_RUNNING_JOBS", 4, minimum=1),
            max_running_jobs_per_caller=_int(env, "BULK_MAX_RUNNING_JOBS_PER_CALLER", 2, minimum=1),
            results_endpoint=env.get("BULK_RESULTS_ENDPOINT_URL") or None,
        )


def _results_url_ttl(env: Mapping[str, str]) -> int:
    ttl = _int(env, "BULK_RESULTS_URL_TTL", 900, minimum=60)
    if ttl > 604_800:  # SigV4's own limit for a presigned URL: 7 days
        raise ConfigError("BULK_RESULTS_URL_TTL must be at most 604800 (7 days, SigV4's limit)")
    return ttl


DEFAULT_METRICS_NAMESPACE = "SmsStatus"


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE  # POWERTOOLS_METRICS_NAMESPACE (the template's Globals)
    status_table: str | None = None  # STATUS_TABLE_NAME: the tracked route and the queue path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RuntimeConfig:
        env = os.environ if env is None else env
        return cls(
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE", "").strip() or DEFAULT_METRICS_NAMESPACE,
            status_table=env.get("STATUS_TABLE_NAME", "").strip() or None,
        )

    def require_status_table(self) -> str:
        if self.status_table is None:
            raise ConfigError("STATUS_TABLE_NAME is not set")
        return self.status_table


# The queue path's schedule: growing waits between the checks of one message (30 s, 1, 2, 4, 8, 15, 30 min, then
# hourly); RECHECK_DELAYS (the template's RecheckDelays) overrides it.
DEFAULT_RECHECK_DELAYS = (30, 60, 120, 240, 480, 900, 1800, 3600)
MAX_RECHECK_DELAY = 12 * 3600  # seconds: a longer wait than half a day between checks is a typo, not a schedule


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    table_name: str
    event_bus_name: str
    recheck_queue_url: str  # where re-checks are sent; its ARN tells our records from senders'
    recheck_queue_arn: str
    query_window: timedelta  # Wooxy and WWT; OpenMarket's 5 days come from its mapping module
    recheck_delays: tuple[int, ...] = DEFAULT_RECHECK_DELAYS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TrackingConfig:
        env = os.environ if env is None else env
        values = {}
        for name in ("STATUS_TABLE_NAME", "EVENT_BUS_NAME", "RECHECK_QUEUE_URL", "RECHECK_QUEUE_ARN"):
            value = env.get(name, "").strip()
            if not value:
                raise ConfigError(f"{name} is not set")
            values[name] = value
        raw_hours = env.get("QUERY_WINDOW_HOURS") or "72"
        try:
            hours = float(raw_hours)
        except ValueError as exc:
            raise ConfigError(f"QUERY_WINDOW_HOURS must be a number, got {raw_hours!r}") from exc
        if hours <= 0:
            raise ConfigError("QUERY_WINDOW_HOURS must be positive")
        return cls(
            values["STATUS_TABLE_NAME"],
            values["EVENT_BUS_NAME"],
            values["RECHECK_QUEUE_URL"],
            values["RECHECK_QUEUE_ARN"],
            timedelta(hours=hours),
            parse_recheck_delays(env.get("RECHECK_DELAYS") or ""),
        )


def parse_recheck_delays(raw: str) -> tuple[int, ...]:
    """RECHECK_DELAYS: comma-separated seconds between the checks of a message that is not final; the last one
    repeats. Empty: the default schedule."""
    if not raw.strip():
        return DEFAULT_RECHECK_DELAYS
    try:
        delays = tuple(int(part) for part in raw.split(","))
    except ValueError as exc:
        raise ConfigError(f"RECHECK_DELAYS must be comma-separated whole seconds, got {raw!r}") from exc
    if not all(1 <= delay <= MAX_RECHECK_DELAY for delay in delays):
        raise ConfigError(f"each of RECHECK_DELAYS must be 1 to {MAX_RECHECK_DELAY} seconds")
    return delays


@cache
def metrics_namespace() -> str:
    """Read once per container: every function of a stack shares the namespace (the template's Globals)."""
    return RuntimeConfig.from_env().metrics_namespace

"""Configuration: read from the environment once per cold start, into frozen values.

This is the one module that reads the environment; deep code receives these values. Each function's module
(functions/<name>/app.py) reads the parts it needs once, through `Configured`, builds what it serves from them and
hands that down:
- `ProviderConfig`: a provider's base URL, secret, timeouts, fan-out (its API, tracking and chunk functions);
- `BulkConfig`: the bulk function's bucket, table, state machine and waits;
- `TrackedConfig`: the tracked route's status table;
- `TrackingConfig`: a tracking function's queue path (status table, event bus, re-check queue, window, schedule).
POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE (the template's Globals) are Powertools' own: it reads them.
"""

from __future__ import annotations

import ipaddress
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from .errors import ServiceError
from .http import HttpSettings
from .model import Provider

DEFAULT_BASE_URLS = {
    Provider.OPENMARKET: "https://smsc.openmarket.com",
    Provider.WOOXY: "https://api.wooxy.com",
    Provider.WWT: "https://api.wwt.world",
}
# OpenMarket's format is [DevelopmentEnvironment]/SMS/[Version0.0.0] (its rule: providers.openmarket.check_user_agent).
DEFAULT_USER_AGENT = "SmsStatus/SMS/1.0.0"
# WWT is a white-label of BSG, whose v1 API authenticates with this header (its public Python client, bsg-python).
DEFAULT_WWT_AUTH_HEADER = "X-API-KEY"
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 9110 token


class ConfigError(ValueError):
    """A missing or invalid setting; the message names the environment variable."""


class Configured[T]:
    """What a function builds from its settings (a provider's service, a tracker, the bulk jobs, a table): read
    from the environment on first use and kept while the container is warm. It lives in the function's own module,
    so each function has its own. A missing or invalid setting is a ServiceError naming the variable on every use:
    the function answers a clear 500 (or fails the batch) instead of failing its cold start."""

    def __init__(self, build: Callable[[Mapping[str, str]], T]) -> None:
        self._build = build
        self._built: list[T] = []
        self._lock = threading.Lock()  # first calls from several threads at once build it once

    def __call__(self) -> T:
        if not self._built:
            with self._lock:
                if not self._built:
                    try:
                        self._built.append(self._build(os.environ))
                    except ConfigError as exc:
                        raise ServiceError(f"configuration error: {exc}") from exc
        return self._built[0]


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


def _required(env: Mapping[str, str], *names: str) -> list[str]:
    values = [env.get(name, "").strip() for name in names]
    for name, value in zip(names, values, strict=True):
        if not value:
            raise ConfigError(f"{name} is not set")
    return values


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
        (secret_name,) = _required(env, f"{prefix}_SECRET_NAME")
        http = HttpSettings(
            connect_timeout=_float(env, "PROVIDER_CONNECT_TIMEOUT", 3.0),
            read_timeout=_float(env, "PROVIDER_READ_TIMEOUT", 10.0),
            retries=_int(env, "PROVIDER_RETRIES", 2),
        )
        user_agent = env.get("OPENMARKET_USER_AGENT") or DEFAULT_USER_AGENT
        if provider is Provider.OPENMARKET:
            from .providers.openmarket import check_user_agent  # OpenMarket's rule; only its functions load it

            try:
                check_user_agent(user_agent)
            except ValueError as exc:
                raise ConfigError(f"OPENMARKET_USER_AGENT: {exc}") from None
        auth_header = env.get("WWT_AUTH_HEADER") or DEFAULT_WWT_AUTH_HEADER
        if provider is Provider.WWT and not HEADER_NAME.fullmatch(auth_header):
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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BulkConfig:
        env = os.environ if env is None else env
        bucket, table = _required(env, "BULK_BUCKET_NAME", "BULK_JOBS_TABLE_NAME")
        return cls(
            bucket=bucket,
            table=table,
            state_machine_arn=env.get("BULK_STATE_MACHINE_ARN", "").strip(),
            retention_days=_int(env, "BULK_RETENTION_DAYS", 7, minimum=1),
            inline_wait=_float(env, "BULK_INLINE_WAIT", 25.0),
            results_url_ttl=_results_url_ttl(env),
            max_running_jobs=_int(env, "BULK_MAX_RUNNING_JOBS", 4, minimum=1),
            max_running_jobs_per_caller=_int(env, "BULK_MAX_RUNNING_JOBS_PER_CALLER", 2, minimum=1),
        )


def _results_url_ttl(env: Mapping[str, str]) -> int:
    ttl = _int(env, "BULK_RESULTS_URL_TTL", 900, minimum=60)
    if ttl > 604_800:  # SigV4's own limit for a presigned URL: 7 days
        raise ConfigError("BULK_RESULTS_URL_TTL must be at most 604800 (7 days, SigV4's limit)")
    return ttl


@dataclass(frozen=True, slots=True)
class TrackedConfig:
    status_table: str  # STATUS_TABLE_NAME: the table the tracked route reads

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TrackedConfig:
        env = os.environ if env is None else env
        (status_table,) = _required(env, "STATUS_TABLE_NAME")
        return cls(status_table)


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
        table, bus, queue_url, queue_arn = _required(env, "STATUS_TABLE_NAME", "EVENT_BUS_NAME", "RECHECK_QUEUE_URL", "RECHECK_QUEUE_ARN")
        return cls(
            table,
            bus,
            queue_url,
            queue_arn,
            timedelta(hours=_float(env, "QUERY_WINDOW_HOURS", 72.0)),
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

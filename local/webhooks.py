"""The status webhook of `make run`: what the template's WebhookRule, WebhookDestination and WebhookConnection do
on AWS, done in this process from the same template (docs/webhooks.md).

- The filter is the rule's own EventPattern (resolved from template.yaml with the local parameters), put on the
  local bus as a rule whose target is an outbox queue: moto matches it as EventBridge would.
- Off the tracking path: tracking's PutEvents only lands the event in that queue. One thread takes events from it
  (at most MAX_PENDING in memory: the rest wait in the queue), WORKERS others POST them, each attempt bounded by
  WEBHOOK_TIMEOUT (EventBridge's 5 s), no faster than the destination's InvocationRateLimitPerSecond.
- The request is the API destination's: POST, body the rule's InputPath ($.detail) as JSON, the connection's
  API-key header with the secret's value (read from the local Secrets Manager, as the dynamic reference is).
- Retries as the rule's RetryPolicy says (185 retries, 24 hours) on what EventBridge retries (a timeout, a
  connection error, 401, 407, 409, 429, 5xx), with exponential backoff and jitter; time runs WEBHOOK_TIME_SCALE
  times faster (default 1440: the 24 hours are one minute). Anything else, or what is still failing then, goes to
  the rule's DLQ (the template's WebhookDeadLetterQueue, in GET /_local/queues) with EventBridge's attributes.

Settings (environment): WEBHOOK_URL (empty: no webhook), WEBHOOK_SECRET (needed with it), WEBHOOK_AUTH_HEADER,
WEBHOOK_PROVIDERS, WEBHOOK_EVENTS (the template parameters WebhookAuthHeader, WebhookProviders, WebhookEvents),
WEBHOOK_TIME_SCALE (1440), WEBHOOK_TIMEOUT (5 seconds). The secret is never printed.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from local.template import STACK, LocalSetupError, arn

SECRET_LOGICAL_ID = "WebhookSecret"  # noqa: S105 - a logical id, not a secret: the template's generated secret, which the local run fills with WEBHOOK_SECRET
OUTBOX_QUEUE = f"{STACK}-webhook-outbox"  # stands in for EventBridge's own store of events waiting for a retry
MAX_PENDING = 1000  # events held in memory at once; more wait in the outbox queue
WORKERS = 4  # attempts in flight at once, as EventBridge sends concurrently: one hung request does not hold the rest
USER_AGENT = "Amazon/EventBridge/ApiDestinations"  # what API destinations send
CONTENT_TYPE = "application/json; charset=utf-8"
# What EventBridge retries for an API destination; any other answer that is not 2xx goes to the DLQ at once.
RETRIED_STATUSES = frozenset({401, 407, 409, 429})
BACKOFF_FIRST = 1.0  # seconds (AWS time) before the first retry; doubled on each retry ...
BACKOFF_CAP = 300.0  # ... up to 5 minutes, each with jitter
MAX_ANSWER_BYTES = 64 * 1024  # what is read of an answer: only its status matters
DEFAULT_TIME_SCALE = 1440.0
DEFAULT_TIMEOUT = 5.0  # EventBridge's client timeout for API destinations
_DYNAMIC_SECRET = re.compile(r"\{\{resolve:secretsmanager:(?P<id>[^}]+?):SecretString\}\}")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    secret: str = field(repr=False)  # never printed
    parameters: dict[str, str]  # template parameter overrides
    time_scale: float = DEFAULT_TIME_SCALE
    timeout: float = DEFAULT_TIMEOUT


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise LocalSetupError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum:
        raise LocalSetupError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def validate_url(url: str) -> str:
    """https://..., or http:// to a loopback address only (the local receiver); never a "*" (API destinations
    read it as a path wildcard), credentials or a fragment."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise LocalSetupError(f"WEBHOOK_URL must be an https:// URL (http:// only to 127.0.0.1), got {url!r}")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise LocalSetupError("WEBHOOK_URL: plain http is accepted only for loopback addresses (127.0.0.1); use https")
    if parts.username or parts.password or parts.fragment or "*" in url or any(c.isspace() for c in url):
        raise LocalSetupError("WEBHOOK_URL must have no credentials, fragment, blank or '*'")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise LocalSetupError("WEBHOOK_URL has an invalid port") from None
    return url


def read_webhook_settings(env: Mapping[str, str], template: Mapping[str, Any]) -> WebhookSettings | None:
    """The webhook of this run, or None without WEBHOOK_URL. Each setting is checked against the template
    parameter it sets (its AllowedPattern or AllowedValues), so what runs locally could deploy."""
    url = env.get("WEBHOOK_URL", "").strip()
    if not url:
        return None
    validate_url(url)
    secret = env.get("WEBHOOK_SECRET", "")
    if not secret.strip():
        raise LocalSetupError("WEBHOOK_URL needs WEBHOOK_SECRET: the value the endpoint expects in WEBHOOK_AUTH_HEADER")
    if len(secret) > 512 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in secret):
        raise LocalSetupError("WEBHOOK_SECRET must be at most 512 printable characters (an HTTP header value)")
    specs = template.get("Parameters") or {}
    parameters = {"WebhookUrl": url}
    for variable, parameter in (
        ("WEBHOOK_AUTH_HEADER", "WebhookAuthHeader"),
        ("WEBHOOK_PROVIDERS", "WebhookProviders"),
        ("WEBHOOK_EVENTS", "WebhookEvents"),
    ):
        spec = specs.get(parameter)
        if spec is None:
            raise LocalSetupError(f"template.yaml has no parameter {parameter} (for {variable})")
        value = env.get(variable, "").strip() or str(spec.get("Default", ""))
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(a) for a in allowed]:
            raise LocalSetupError(f"{variable} must be one of {', '.join(map(str, allowed))}, got {value!r}")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and not re.fullmatch(str(pattern), value):
            raise LocalSetupError(f"{variable}: {spec.get('ConstraintDescription') or 'must match ' + str(pattern)}, got {value!r}")
        parameters[parameter] = value
    return WebhookSettings(
        url=url,
        secret=secret,
        parameters=parameters,
        time_scale=_number(env, "WEBHOOK_TIME_SCALE", DEFAULT_TIME_SCALE, 1),
        timeout=_number(env, "WEBHOOK_TIMEOUT", DEFAULT_TIMEOUT, 0.05),
    )


# ---- the template's rule -> destination -> connection ---------------------------------------------------------------
def _getatt_target(value: Any) -> str | None:
    getatt = value.get("Fn::GetAtt") if isinstance(value, dict) else None
    if getatt is None:
        return None
    return getatt[0] if isinstance(getatt, list) else str(getatt).split(".", 1)[0]


def _input(event: dict[str, Any], path: str | None) -> Any:
    """A target's InputPath: "$" or "$.a.b" (all this template uses)."""
    if not path or path == "$":
        return event
    if not re.fullmatch(r"\$(\.[A-Za-z0-9_-]+)+", path):
        raise LocalSetupError(f"the local webhook supports InputPath $ or $.a.b, not {path!r}")
    value: Any = event
    for key in path.split(".")[1:]:
        value = value.get(key) if isinstance(value, dict) else None
    return value


@dataclass(frozen=True)
class Route:
    """What one rule target on an API destination does, read from the template."""

    rule_arn: str
    target_arn: str
    bus: str
    pattern: dict[str, Any]
    input_path: str | None
    endpoint: str
    method: str
    headers: dict[str, str] = field(repr=False)  # the secret header among them
    rate_limit: float
    max_age: float
    max_retries: int
    dlq_url: str | None


def read_route(aws: Any) -> Route | None:
    """The rule of the local stack with an API-destination target (None when the template's Condition leaves it
    out), resolved against the local parameters and physical ids."""
    resolve = aws.resolver().resolve
    for logical, rule in aws._of_type("AWS::Events::Rule"):
        raw_targets = (rule.get("Properties") or {}).get("Targets") or []
        for index, raw_target in enumerate(raw_targets):
            destination = _getatt_target(raw_target.get("Arn"))
            if destination is None or aws.resources.get(destination, {}).get("Type") != "AWS::Events::ApiDestination":
                continue
            props = resolve(rule.get("Properties") or {})
            target = props["Targets"][index]
            dest = resolve(aws.resources[destination].get("Properties") or {})
            connection = _getatt_target((aws.resources[destination].get("Properties") or {}).get("ConnectionArn"))
            headers = {"Content-Type": CONTENT_TYPE, "User-Agent": USER_AGENT}
            headers.update({str(k): str(v) for k, v in ((target.get("HttpParameters") or {}).get("HeaderParameters") or {}).items()})
            if connection is not None:
                auth = resolve(aws.resources[connection].get("Properties") or {}).get("AuthParameters") or {}
                api_key = auth.get("ApiKeyAuthParameters")
                if api_key:
                    headers[str(api_key["ApiKeyName"])] = _secret_value(aws, str(api_key["ApiKeyValue"]))
            retry = target.get("RetryPolicy") or {}
            dlq_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
            dlq = next((url for name, url in aws.queues.items() if aws.physical[name].attrs.get("Arn") == dlq_arn), None)
            bus = str(props.get("EventBusName") or "default")
            return Route(
                rule_arn=arn("events", f"rule/{bus}/{logical}"),
                target_arn=arn("events", f"api-destination/{destination}"),
                bus=bus,
                pattern=props["EventPattern"],
                input_path=target.get("InputPath"),
                endpoint=validate_url(str(dest["InvocationEndpoint"])),
                method=str(dest.get("HttpMethod", "POST")),
                headers=headers,
                rate_limit=float(dest.get("InvocationRateLimitPerSecond") or 300),
                max_age=float(retry.get("MaximumEventAgeInSeconds", 86400)),
                max_retries=int(retry.get("MaximumRetryAttempts", 185)),
                dlq_url=dlq,
            )
    return None


def _secret_value(aws: Any, value: str) -> str:
    """A `{{resolve:secretsmanager:<id>:SecretString}}` reference read from the local Secrets Manager, as
    CloudFormation resolves it at deploy time; any other value as it is."""
    match = _DYNAMIC_SECRET.fullmatch(value.strip())
    if match is None:
        return value
    return aws.client("secretsmanager").get_secret_value(SecretId=match["id"])["SecretString"]


# ---- delivery ---------------------------------------------------------------------------------------------------------
@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    event: dict[str, Any] = field(compare=False)
    first_seen: float = field(compare=False)
    retries: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    retried: bool  # a failure EventBridge retries
    code: str  # "200", "500", "TIMEOUT", "CONNECTION_ERROR"
    message: str  # never the secret or the body


def backoff(retry: int) -> float:
    """Seconds of AWS time before retry number `retry` (1, 2, ...): exponential with jitter, capped."""
    ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (retry - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


class LocalWebhook:
    def __init__(self, aws: Any, route: Route, *, time_scale: float, timeout: float, log: Callable[[str], None] = print) -> None:
        self.aws = aws
        self.route = route
        self.time_scale = time_scale
        self.timeout = timeout
        self.log = log
        self.counts = {"delivered": 0, "retries": 0, "dead_lettered": 0}
        self._sqs = aws.client("sqs")
        self._outbox_url = ""
        self._heap: list[_Pending] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._next_start = 0.0  # InvocationRateLimitPerSecond: when the next attempt may start
        self._in_flight = 0
        self._threads = [threading.Thread(target=self._intake, name="webhook-intake", daemon=True)]
        self._threads += [threading.Thread(target=self._deliver, name=f"webhook-delivery-{n}", daemon=True) for n in range(WORKERS)]

    @classmethod
    def from_stack(cls, aws: Any, settings: WebhookSettings, log: Callable[[str], None] = print) -> LocalWebhook:
        route = read_route(aws)
        if route is None:
            raise LocalSetupError("WEBHOOK_URL is set but template.yaml has no rule targeting an API destination")
        return cls(aws, route, time_scale=settings.time_scale, timeout=settings.timeout, log=log)

    def start(self) -> LocalWebhook:
        self._outbox_url = self._sqs.create_queue(QueueName=OUTBOX_QUEUE)["QueueUrl"]
        events = self.aws.client("events")
        name = f"{STACK}-webhook"
        events.put_rule(Name=name, EventBusName=self.route.bus, EventPattern=json.dumps(self.route.pattern))
        events.put_targets(Rule=name, EventBusName=self.route.bus, Targets=[{"Id": "webhook", "Arn": arn("sqs", OUTBOX_QUEUE)}])
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(self.timeout + 2)

    def describe(self) -> str:
        """One banner line; names the auth header, never its value."""
        pattern = self.route.pattern.get("detail", {}).get("report", {})
        which = "final changes" if pattern.get("final") == [True] else "every change"
        providers = ",".join(pattern.get("provider") or ["any provider"])
        auth = next((name for name in self.route.headers if name not in ("Content-Type", "User-Agent")), None)
        return (
            f"webhook: {self.route.method} {which} of {providers} to {self.route.endpoint} ({auth} header; retries for 24 h "
            f"of AWS time, {self.time_scale:g} x faster here; then WebhookDeadLetterQueue, in GET /_local/queues)"
        )

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {**self.counts, "pending": len(self._heap), "in_flight": self._in_flight}

    def idle(self) -> bool:
        """Nothing waiting or being sent, and nothing in the outbox queue: every published event is settled."""
        stats = self.stats()
        if stats["pending"] or stats["in_flight"]:
            return False
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self._sqs.get_queue_attributes(QueueUrl=self._outbox_url, AttributeNames=names)["Attributes"]
        return all(int(attributes.get(name, 0)) == 0 for name in names) and self.stats() == stats

    # ---- threads ------------------------------------------------------------------------------------------------
    def _intake(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                room = MAX_PENDING - len(self._heap)
            if room <= 0:  # backpressure: the rest waits in the outbox queue, not in memory
                self._stop.wait(0.1)
                continue
            try:
                received = self._sqs.receive_message(QueueUrl=self._outbox_url, MaxNumberOfMessages=min(10, room), WaitTimeSeconds=1)
            except Exception as exc:
                self.log(f"[webhook] cannot read the outbox queue: {type(exc).__name__}")
                self._stop.wait(1)
                continue
            for message in received.get("Messages", []):
                try:
                    event = json.loads(message["Body"])
                except ValueError:
                    event = None
                if isinstance(event, dict):
                    now = time.monotonic()
                    with self._cond:
                        heapq.heappush(self._heap, _Pending(now, next(self._seq), event, now))
                        self._cond.notify()
                self._sqs.delete_message(QueueUrl=self._outbox_url, ReceiptHandle=message["ReceiptHandle"])

    def _next_due(self) -> _Pending | None:
        with self._cond:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    self._in_flight += 1
                    return heapq.heappop(self._heap)
                self._cond.wait(min(0.5, self._heap[0].due - now) if self._heap else 0.5)
        return None

    def _deliver(self) -> None:
        while (item := self._next_due()) is not None:
            try:
                with self._cond:  # InvocationRateLimitPerSecond: attempts start at least 1/rate apart
                    start = max(time.monotonic(), self._next_start)
                    self._next_start = start + 1 / self.route.rate_limit
                self._stop.wait(max(0.0, start - time.monotonic()))
                self._settle(item, self.send(item.event))
            finally:
                with self._cond:
                    self._in_flight -= 1

    def _settle(self, item: _Pending, outcome: Outcome) -> None:
        event_id = (item.event.get("detail") or {}).get("event_id") if isinstance(item.event.get("detail"), dict) else None
        attempt = item.retries + 1
        if outcome.ok:
            with self._cond:
                self.counts["delivered"] += 1
            self.log(f"[webhook] {event_id} -> {outcome.code} (attempt {attempt})")
            return
        age = (time.monotonic() - item.first_seen) * self.time_scale  # AWS time
        delay = backoff(item.retries + 1)
        if not outcome.retried:
            self._dead_letter(item, outcome, None)
        elif item.retries >= self.route.max_retries:
            self._dead_letter(item, outcome, "MaximumRetryAttempts")
        elif age + delay > self.route.max_age:
            self._dead_letter(item, outcome, "MaximumEventAgeInSeconds")
        else:
            item.retries += 1
            item.due = time.monotonic() + delay / self.time_scale
            with self._cond:
                self.counts["retries"] += 1
                heapq.heappush(self._heap, item)
                self._cond.notify()
            self.log(f"[webhook] {event_id} -> {outcome.code} (attempt {attempt}); retry in {delay:.0f} s (AWS time)")
            return
        self.log(f"[webhook] {event_id} -> {outcome.code} (attempt {attempt}); sent to the DLQ")

    def _dead_letter(self, item: _Pending, outcome: Outcome, exhausted: str | None) -> None:
        """The event as EventBridge dead-letters it: the whole event as the body, why in message attributes."""
        attributes = {
            "RULE_ARN": self.route.rule_arn,
            "TARGET_ARN": self.route.target_arn,
            "ERROR_CODE": outcome.code,
            "ERROR_MESSAGE": outcome.message,
            "RETRY_ATTEMPTS": str(item.retries),
        }
        if exhausted:
            attributes["EXHAUSTED_RETRY_CONDITION"] = exhausted
        with self._cond:
            self.counts["dead_lettered"] += 1
        if self.route.dlq_url is None:
            self.log("[webhook] the rule has no DeadLetterConfig: the event is dropped")
            return
        self._sqs.send_message(
            QueueUrl=self.route.dlq_url,
            MessageBody=json.dumps(item.event),
            MessageAttributes={name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()},
        )

    def send(self, event: dict[str, Any]) -> Outcome:
        """One attempt: the API destination's request. TLS is verified; redirects are not followed (only the
        configured URL is ever called)."""
        body = json.dumps(_input(event, self.route.input_path), separators=(",", ":")).encode()
        parts = urlsplit(self.route.endpoint)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if parts.scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.timeout)
        try:
            connection.request(self.route.method, path, body=body, headers=self.route.headers)
            answer = connection.getresponse()
            answer.read(MAX_ANSWER_BYTES)
            status = answer.status
        except TimeoutError:
            return Outcome(False, True, "TIMEOUT", f"no answer within {self.timeout:g} s")
        except (OSError, http.client.HTTPException) as exc:
            return Outcome(False, True, "CONNECTION_ERROR", type(exc).__name__)
        finally:
            connection.close()
        if 200 <= status < 300:
            return Outcome(True, False, str(status), "OK")
        return Outcome(False, status in RETRIED_STATUSES or status >= 500, str(status), f"the endpoint answered HTTP {status}")

"""Load on the queue path of the local stack: what `make run` runs (the sandboxes, LocalAws built from
template.yaml, one poller per SQS event source), fed with single-id sender messages and measured.

    with QueueLoad(recheck_delays="1,1,1") as load:
        result = load.run("wooxy", 1_000, latency=0.2, rate=500, timeout=60)
        print(result.summary())

`run` seeds `count` messages in the provider's sandbox, enqueues `{"ids": ["<id>"]}` for each on the provider's
tracking queue (SendMessageBatch, 10 a call, at `rate` messages a second or all at once), then waits (at most
`timeout` seconds after the last enqueue) until every id has its first check stored in the status table, or with
`checks_to_final` until every id is final and the provider's queues are empty. It measures:
- provider requests, ids per request (Wooxy's request body lists them; OpenMarket asks one ticket a request),
  the most requests the sandbox had in flight at once;
- the time from the last enqueue to the last first check stored (polled every POLL_SECONDS);
- messages in each dead-letter queue;
- every AWS request made on the functions' behalf (theirs and the event sources' receives and deletes), by
  service and operation, and Lambda invocations per function, counted from the moment the run starts. Empty
  receives (the pollers' idle long polls) are counted apart: they depend on how long the run is, not on the
  messages. The harness's own requests (enqueue, table polls, queue depths) are not counted.

A sandbox message's status moves one step per query (`PerCheckMessage`), whatever the timing: with
`checks_to_final=3` every message is final at its third check, so the counts per message follow a message
through exactly three checks. The stack's re-check delays are `recheck_delays` (e.g. "1,1,1"; None: the
template's schedule, whose first re-check is 30 s away, so a first-check run sees no re-check).

Each run starts from cold containers: every cache the shared layer keeps per process (the warm services,
trackers, stores) is cleared when the stack starts and when it stops, as a new Lambda container would start.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from local.template import REGION

POLL_SECONDS = 0.1  # how often the harness reads the sandbox's requests and the table
STATUS_STEPS = {  # a provider's answers, one per check: the last one is final
    "wooxy": ("queued", "sent", "delivered"),
    "openmarket": (2, 3, 4),  # accepted, buffered with the carrier, delivered
}
QUEUE_PREFIX = {"openmarket": "OpenMarket", "wooxy": "Wooxy", "wwt": "Wwt"}  # the template's logical ids
WOOXY_IDS_PER_REQUEST = 100


# ---- the sandbox side ---------------------------------------------------------------------------------------------
def per_check_message_class() -> type:
    from dataclasses import dataclass as message_dataclass

    from local.sandboxes.base import SeededMessage

    @message_dataclass(eq=False)
    class PerCheckMessage(SeededMessage):
        """A seeded message whose status moves one step each time the provider is asked for it."""

        def __post_init__(self) -> None:
            self._asked = 0
            self._lock = threading.Lock()

        def state(self, now: float) -> Any:
            with self._lock:
                step = min(self._asked, len(self.steps) - 1)
                self._asked += 1
            return self.steps[step][1]

    return PerCheckMessage


def ids_of(provider: str, body: bytes) -> list[str]:
    """The ids one provider request asked for."""
    try:
        if provider == "wooxy":
            ids = json.loads(body).get("ids")
            return [str(i) for i in ids] if isinstance(ids, list) else []
        if provider == "openmarket":
            from defusedxml.ElementTree import fromstring

            ticket = fromstring(body, forbid_dtd=True).find("ticket")
            return [ticket.get("id")] if ticket is not None and ticket.get("id") else []
    except (ValueError, AttributeError, SyntaxError):
        return []
    return []


# ---- counting what the functions ask of AWS -----------------------------------------------------------------------
class AwsCounts:
    """Every botocore request of this process but the harness's own clients, and every local Lambda invocation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.own: set[int] = set()  # id() of the harness's clients
        self.requests: Counter[tuple[str, str]] = Counter()  # (service, operation)
        self.empty_receives = 0
        self.invocations: Counter[str] = Counter()  # function logical id
        self.records: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.empty_receives = 0
            self.invocations.clear()
            self.records.clear()
            self.throttled.clear()

    @contextmanager
    def active(self) -> Iterator[None]:
        from botocore.client import BaseClient

        from local.lambda_runtime import FunctionThrottled, LocalFunction

        make_api_call = BaseClient._make_api_call
        invoke = LocalFunction.invoke
        counts = self

        def counted_call(client: Any, operation: str, params: Any) -> Any:
            if id(client) in counts.own:
                return make_api_call(client, operation, params)
            key = (client.meta.service_model.service_id, operation)
            try:
                result = make_api_call(client, operation, params)
            except Exception:
                with counts._lock:
                    counts.requests[key] += 1
                raise
            with counts._lock:
                if operation == "ReceiveMessage" and not result.get("Messages"):
                    counts.empty_receives += 1
                else:
                    counts.requests[key] += 1
            return result

        def counted_invoke(function: Any, event: Any) -> Any:
            records = len(event.get("Records") or []) if isinstance(event, dict) else 0
            try:
                return invoke(function, event)
            except FunctionThrottled:
                with counts._lock:
                    counts.throttled[function.logical_id] += 1
                raise
            finally:
                with counts._lock:
                    counts.invocations[function.logical_id] += 1
                    counts.records[function.logical_id] += records

        with mock.patch.object(BaseClient, "_make_api_call", counted_call), mock.patch.object(LocalFunction, "invoke", counted_invoke):
            yield

    def by_service(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (service, _), count in self.requests.items():
            totals[service] += count
        return dict(totals)


@contextmanager
def quiet_metrics() -> Iterator[None]:
    """While active, Powertools' EMF metric lines are not printed. In Lambda they go to CloudWatch; here (pytest
    swaps sys.stdout per test, so `make run`'s stdout filter would not hold) they would bury everything else."""
    import builtins
    import importlib

    def print_unless_metric(*args: Any, **kwargs: Any) -> None:
        if not (args and isinstance(args[0], str) and args[0].startswith('{"_aws":')):
            builtins.print(*args, **kwargs)

    with ExitStack() as patches:
        for name in ("aws_lambda_powertools.metrics.base", "aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch"):
            module = importlib.import_module(name)
            patches.enter_context(mock.patch.object(module, "print", print_unless_metric, create=True))
        yield


def forget_warm_state() -> None:
    """What a new Lambda container would not have: every per-process cache of the shared layer (its AWS client
    configuration) and the cached secrets. What a function builds from its settings (its service, tracker) lives
    in its own module, which each LocalAws loads anew."""
    from sms_status.credentials import clear_caches

    for name, module in list(sys.modules.items()):
        if name == "sms_status" or name.startswith("sms_status."):
            for value in list(vars(module).values()):
                if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == name:
                    value.cache_clear()
    clear_caches()


# ---- a run's figures ----------------------------------------------------------------------------------------------
@dataclass
class LoadResult:
    provider: str
    count: int
    latency: float
    checks_to_final: int | None
    enqueue_seconds: float = 0.0  # first SendMessageBatch to the last one's answer
    first_checked: int = 0
    final: int = 0
    last_first_check: float | None = None  # seconds from the last enqueue to the last first check stored
    timed_out: bool = False
    requests: int = 0  # provider requests
    ids_per_request: list[int] = field(default_factory=list)
    max_in_flight: int = 0
    dlq: dict[str, int] = field(default_factory=dict)  # DLQ logical id -> messages
    aws: Counter[tuple[str, str]] = field(default_factory=Counter)
    empty_receives: int = 0
    invocations: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)

    @property
    def mean_ids_per_request(self) -> float:
        return statistics.fmean(self.ids_per_request) if self.ids_per_request else 0.0

    def aws_by_service(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (service, _), count in self.aws.items():
            totals[service] += count
        return dict(totals)

    def per_message(self) -> dict[str, float]:
        """AWS requests by service and Lambda invocations, per tracked message."""
        figures = {service: count / self.count for service, count in sorted(self.aws_by_service().items())}
        figures["Lambda invocations"] = sum(self.invocations.values()) / self.count
        return figures

    def summary(self) -> str:
        ids = self.ids_per_request
        lines = [
            f"{self.provider}: {self.count:,} single-id messages, provider latency {self.latency * 1000:.0f} ms, "
            f"enqueued in {self.enqueue_seconds:.1f} s",
            f"  first checked {self.first_checked:,} of {self.count:,}"
            + (f", final {self.final:,}" if self.checks_to_final else "")
            + (" (TIMED OUT)" if self.timed_out else ""),
            f"  provider requests {self.requests:,}, ids per request mean {self.mean_ids_per_request:.1f} max {max(ids, default=0)}, "
            f"max in flight {self.max_in_flight}",
            "  last enqueue to last first check " + ("n/a" if self.last_first_check is None else f"{self.last_first_check:.2f} s"),
            f"  DLQ messages {sum(self.dlq.values())}" + "".join(f", {name} {n}" for name, n in sorted(self.dlq.items()) if n),
            "  AWS requests: " + ", ".join(f"{service} {op} {n}" for (service, op), n in sorted(self.aws.items())),
            f"  empty receives (idle long polls) {self.empty_receives}",
            "  Lambda invocations: "
            + ", ".join(f"{name} {n} ({self.records[name]} records)" for name, n in sorted(self.invocations.items()))
            + (f"; throttled {dict(self.throttled)}" if self.throttled else ""),
            "  per message: " + ", ".join(f"{name} {value:.2f}" for name, value in self.per_message().items()),
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class QueueShare:
    """How much of a provider the template gives the queue path."""

    functions: tuple[str, ...]  # the functions consuming the provider's queues
    max_concurrency: int | None  # the event sources' MaximumConcurrency, summed (None: one is unbounded)
    reserved: int | None  # the functions' reserved concurrency, summed (None: one has none)
    fan_out: int  # provider requests one invocation makes at once (FAN_OUT; Wooxy's are one after another)

    @property
    def invocations(self) -> int | None:
        """Queue-path invocations at once: the tighter of the event sources' and the reservation's limits."""
        limits = [limit for limit in (self.max_concurrency, self.reserved) if limit is not None]
        return min(limits) if limits else None


# ---- the stack under load -----------------------------------------------------------------------------------------
class QueueLoad:
    """The local stack as `make run` assembles it (local/run.py), without the HTTP API, for load runs."""

    def __init__(
        self, recheck_delays: str | None = None, log: Callable[[str], None] = lambda line: None, hide_metrics: bool = True
    ) -> None:
        self.recheck_delays = recheck_delays
        self.hide_metrics = hide_metrics
        self.log = log
        self.counts = AwsCounts()
        self.aws: Any = None
        self.settings: Any = None
        self.workers: list[Any] = []
        self._stack = ExitStack()
        self._environ: dict[str, str] = {}
        self._clients: dict[str, Any] = {}
        self._runs = 0

    # -- lifecycle --
    def start(self) -> QueueLoad:
        from local import run
        from local.sandboxes import base
        from local.stack import LocalAws
        from local.template import TEMPLATE, load_template_checked

        self._environ = dict(os.environ)
        try:
            forget_warm_state()
            # Every request of a run is kept for reading ids per request (a long `make run` keeps the last 10,000).
            self._stack.enter_context(mock.patch.object(base, "MAX_RECORDED_REQUESTS", sys.maxsize))
            self._stack.enter_context(self.counts.active())
            if self.hide_metrics:  # as `make run` hides them: the functions' EMF metric lines would drown the output
                self._stack.enter_context(quiet_metrics())
            self.settings = run.Settings(
                port=0, moto_port=0, providers=[run.ProviderSetting(spec, None, 0, None) for spec in run.PROVIDERS]
            )
            run.start_sandboxes(self.settings)
            env = {"RECHECK_DELAYS": self.recheck_delays} if self.recheck_delays else {}
            self.aws = LocalAws(*run.stack_inputs(self.settings, load_template_checked(TEMPLATE), env)).start()
            self.workers = run.start_queue_workers(self.aws, self.log)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []
        for setting in self.settings.providers if self.settings else []:
            if setting.sandbox is not None:
                setting.sandbox.stop()
        if self.aws is not None:
            self.aws.stop()
            self.aws = None
        self._stack.close()
        forget_warm_state()
        for key in [key for key in os.environ if key not in self._environ]:  # what LocalAws shared with the process
            del os.environ[key]
        os.environ.update(self._environ)

    def __enter__(self) -> QueueLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the stack has --
    def sandbox(self, provider: str) -> Any:
        return next(s.sandbox for s in self.settings.providers if s.spec.name == provider)

    def client(self, service: str) -> Any:
        """A client of the harness's own (its requests are not counted)."""
        if service not in self._clients:
            import boto3

            client = boto3.session.Session().client(service, region_name=REGION)
            self.counts.own.add(id(client))
            self._clients[service] = client
        return self._clients[service]

    def queues(self, provider: str) -> dict[str, str]:
        """The provider's queues the functions consume (logical id -> URL): its tracking and re-check queues."""
        prefix = QUEUE_PREFIX[provider]
        return {logical: url for logical, url in self.aws.queues.items() if logical.startswith(prefix) and "DeadLetter" not in logical}

    def tracking_queue(self, provider: str) -> str:
        return self.aws.queues[f"{QUEUE_PREFIX[provider]}TrackingQueue"]

    def dead_letter_counts(self) -> dict[str, int]:
        sqs = self.client("sqs")
        counts = {}
        for logical, url in self.aws.queues.items():
            if "DeadLetter" in logical:
                attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
                counts[logical] = int(attributes["ApproximateNumberOfMessages"])
        return counts

    def queue_share(self, provider: str) -> QueueShare:
        """From the template as built: the functions with an SQS event source on the provider's queues."""
        from sms_status.config import ProviderConfig
        from sms_status.model import Provider

        arns = {self.aws.physical[logical].attrs["Arn"] for logical in self.queues(provider)}
        resolve = self.aws.resolver().resolve
        functions: list[str] = []
        concurrency: list[int | None] = []
        for logical, resource in self.aws.resources.items():
            if resource.get("Type") != "AWS::Serverless::Function":
                continue
            for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
                if event.get("Type") != "SQS":
                    continue
                props = resolve(event.get("Properties") or {})
                if props.get("Queue") in arns:
                    if logical not in functions:
                        functions.append(logical)
                    limit = (props.get("ScalingConfig") or {}).get("MaximumConcurrency")
                    concurrency.append(int(limit) if limit is not None else None)
        reserved = [self.aws.functions[name].reserved_concurrency for name in functions]
        fan_out = max(ProviderConfig.from_env(Provider(provider), self.aws.functions[name].environment).fan_out for name in functions)
        return QueueShare(
            functions=tuple(functions),
            max_concurrency=None if None in concurrency else sum(concurrency),  # type: ignore[arg-type]
            reserved=None if None in reserved else sum(reserved),  # type: ignore[arg-type]
            fan_out=fan_out,
        )

    # -- one run --
    def seed(self, provider: str, count: int, checks_to_final: int) -> list[str]:
        """`count` new messages in the provider's sandbox, final at their `checks_to_final`-th check."""
        self._runs += 1
        if provider == "wooxy":
            ids = [f"{self._runs:04x}{n:020x}" for n in range(count)]  # shaped like Wooxy's own ids
        else:
            ids = [f"LOAD{self._runs:02d}-{n:06d}" for n in range(count)]
        answers = STATUS_STEPS[provider]
        steps = [(float(n), answers[n]) for n in range(checks_to_final - 1)] + [(float(checks_to_final - 1), answers[-1])]
        message_class = per_check_message_class()
        sandbox = self.sandbox(provider)
        now = sandbox.clock.now()
        sandbox.messages.update({key: message_class(id=key, steps=list(steps), created_at=now) for key in ids})
        return ids

    def enqueue(self, provider: str, ids: list[str], rate: float | None = None) -> float:
        """`{"ids": [id]}` per id on the provider's tracking queue, 10 a SendMessageBatch, at `rate` a second (None:
        as fast as they go). Returns when the last batch was accepted (time.monotonic())."""
        sqs, url = self.client("sqs"), self.tracking_queue(provider)
        start = time.monotonic()
        for first in range(0, len(ids), 10):
            if rate:
                pause = start + first / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            entries = [{"Id": str(n), "MessageBody": json.dumps({"ids": [key]})} for n, key in enumerate(ids[first : first + 10])]
            answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
            if answer.get("Failed"):
                raise RuntimeError(f"SendMessageBatch refused {len(answer['Failed'])} message(s): {answer['Failed'][0]}")
        return time.monotonic()

    def run(
        self,
        provider: str,
        count: int,
        *,
        latency: float = 0.2,
        rate: float | None = None,
        timeout: float = 120.0,
        checks_to_final: int | None = None,
    ) -> LoadResult:
        """Seed, enqueue and wait (see the module's doc). `checks_to_final`: None measures first checks only (the
        messages are final at their first check, so nothing is re-checked); N follows every message to final
        through N checks and until the provider's queues are empty."""
        from sms_status.model import Provider
        from sms_status.store import TrackKey

        sandbox = self.sandbox(provider)
        ids = self.seed(provider, count, checks_to_final or 1)
        result = LoadResult(provider, count, latency, checks_to_final)
        sandbox.latency = latency
        sandbox.reset_stats()
        self.counts.reset()
        keys = {TrackKey(Provider(provider), "id", key).pk: key for key in ids}
        watch = _Watch(self, provider, keys, follow=checks_to_final is not None)

        started = time.monotonic()
        watcher = threading.Thread(target=watch.run, name="queue-load-watch", daemon=True)
        watcher.start()
        try:
            last_enqueue = self.enqueue(provider, ids, rate)
            result.enqueue_seconds = last_enqueue - started
            deadline = last_enqueue + timeout
            done = watch.all_final if checks_to_final else watch.all_checked
            while not done.wait(POLL_SECONDS):
                if time.monotonic() > deadline:
                    result.timed_out = True
                    break
            if checks_to_final and not result.timed_out:
                result.timed_out = not self._wait_queues_empty(provider, deadline)
        finally:
            watch.stop.set()
            watcher.join(10)

        if result.timed_out:  # what is left would keep the pollers busy during the next run
            self.purge(provider)
        result.first_checked, result.final = len(watch.checked_at), len(watch.final)
        if watch.checked_at and len(watch.checked_at) == count:
            result.last_first_check = max(watch.checked_at.values()) - last_enqueue
        result.requests, result.ids_per_request = watch.requests, watch.ids_per_request
        result.max_in_flight = sandbox.max_in_flight
        result.dlq = self.dead_letter_counts()
        with self.counts._lock:
            result.aws = Counter(self.counts.requests)
            result.empty_receives = self.counts.empty_receives
            result.invocations = Counter(self.counts.invocations)
            result.records = Counter(self.counts.records)
            result.throttled = Counter(self.counts.throttled)
        sandbox.latency = 0.0
        return result

    def purge(self, provider: str) -> None:
        sqs = self.client("sqs")
        for url in self.queues(provider).values():
            sqs.purge_queue(QueueUrl=url)

    def _wait_queues_empty(self, provider: str, deadline: float) -> bool:
        """Until the provider's queues hold nothing (visible, in flight or delayed): the last batches are deleted."""
        sqs = self.client("sqs")
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
        while time.monotonic() < deadline:
            depths = [sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"] for url in self.queues(provider).values()]
            if all(int(attributes.get(name, 0)) == 0 for attributes in depths for name in names):
                return True
            time.sleep(POLL_SECONDS)
        return False


class _Watch:
    """Reads the sandbox's recorded requests and the status table while a run goes on."""

    def __init__(self, load: QueueLoad, provider: str, keys: dict[str, str], follow: bool) -> None:
        self.load = load
        self.provider = provider
        self.keys = keys  # pk -> id
        self.follow = follow
        self.table = load.aws.tables["StatusTable"]
        self.seen: set[str] = set()  # ids the provider was asked for
        self.checked_at: dict[str, float] = {}  # id -> when its first check was seen stored
        self.final: set[str] = set()
        self.requests = 0
        self.ids_per_request: list[int] = []
        self.all_checked = threading.Event()
        self.all_final = threading.Event()
        self.stop = threading.Event()
        self._read = 0

    def run(self) -> None:
        ours = set(self.keys.values())
        pks = {key: pk for pk, key in self.keys.items()}
        while not self.stop.wait(POLL_SECONDS):
            try:
                self._step(ours, pks)
            except Exception as error:  # a failed table read is tried again on the next poll
                self.load.log(f"[queue-load] watch: {type(error).__name__}: {error}")

    def _step(self, ours: set[str], pks: dict[str, str]) -> None:
        requests = self.load.sandbox(self.provider).requests
        end = len(requests)  # appended to while we read: take up to here, the rest on the next poll
        new, self._read = requests[self._read : end], end
        for request in new:
            asked = ids_of(self.provider, request.body)
            if asked and asked[0] in ours:
                self.requests += 1
                self.ids_per_request.append(len(asked))
                self.seen.update(asked)
        # Ids asked for but not seen stored yet; with `follow`, stored ones not yet final too.
        pending = [key for key in self.seen if key not in self.checked_at or (self.follow and key not in self.final)]
        self._read_table([pks[key] for key in pending])
        if len(self.checked_at) == len(self.keys):
            self.all_checked.set()
        if len(self.final) == len(self.keys):
            self.all_final.set()

    def _read_table(self, pks: list[str]) -> None:
        dynamodb = self.load.client("dynamodb")
        for start in range(0, len(pks), 100):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [{"pk": {"S": pk}} for pk in pks[start : start + 100]],
                    "ProjectionExpression": "pk, #final",
                    "ExpressionAttributeNames": {"#final": "final"},
                }
            }
            while request:
                answer = dynamodb.batch_get_item(RequestItems=request)
                now = time.monotonic()
                for item in answer["Responses"].get(self.table, []):
                    key = self.keys[item["pk"]["S"]]
                    self.checked_at.setdefault(key, now)
                    if item.get("final", {}).get("BOOL"):
                        self.final.add(key)
                request = answer.get("UnprocessedKeys") or {}

"""`make run` / `python -m local.run`: the whole service on 127.0.0.1, no AWS account, against the sandboxes.

Every port it needs is checked first: another instance (or anything else) on them stops it at once, with the
one line that runs it on free ports. Started in the foreground, stopped by Ctrl-C (SIGINT) or SIGTERM:
- the three provider sandboxes on fixed ports (unless <P>_BASE_URL points a provider elsewhere),
- AWS in-process with moto, built from template.yaml (local/stack.py),
- the HTTP API from api/openapi.yaml (local/api_server.py), SigV4 NOT checked,
- one SQS poller per queue -> function mapping (local/queue_worker.py), with Lambda's batching window and
  concurrency; functions are throttled at their reserved concurrency as in Lambda (counters: GET /_local/functions,
  GET /_local/queues),
- a reader of the change events EventBridge routes to a capture queue,
- with WEBHOOK_URL, the status webhook (local/webhooks.py, docs/webhooks.md).

Settings (environment): PORT (3000), OPENMARKET_SANDBOX_PORT / WOOXY_SANDBOX_PORT / WWT_SANDBOX_PORT
(8081-8083), MOTO_PORT (8084: moto's endpoint for `aws --endpoint-url`), OPENMARKET_BASE_URL / WOOXY_BASE_URL /
WWT_BASE_URL, OPENMARKET_CREDENTIALS / WOOXY_CREDENTIALS / WWT_CREDENTIALS (JSON, like the deployed secrets),
LOG_LEVEL (WARNING), LOCAL_SHOW_METRICS=1 (print EMF metrics), RECHECK_DELAYS (the template's schedule),
WEBHOOK_URL / WEBHOOK_SECRET / WEBHOOK_AUTH_HEADER / WEBHOOK_PROVIDERS / WEBHOOK_EVENTS / WEBHOOK_TIME_SCALE /
WEBHOOK_TIMEOUT (local/webhooks.py).
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from local.function_env import install_function_environ
from local.template import ROOT, TEMPLATE, LocalSetupError, load_template_checked

# The layer is on the Lambda path as /opt/python; here it is a folder of the repository.
sys.path.insert(0, str(ROOT / "layers" / "shared"))
# moto's endpoint holds the provider credentials (Secrets Manager): no CORS headers, so no web page can read them.
# moto reads this when first imported, which is after this line.
os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"
# Before anything reads the environment: each function sees its own Environment block (local/function_env.py).
install_function_environ()

from local.sandboxes.base import Sandbox  # noqa: E402
from sms_status.config import ConfigError, validate_base_url  # noqa: E402


@dataclass(frozen=True)
class ProviderSpec:
    name: str  # as in routes and functions/<name>/
    prefix: str  # environment prefix
    default_port: int
    credential_fields: tuple[str, ...]


PROVIDERS = (
    ProviderSpec("openmarket", "OPENMARKET", 8081, ("account_id", "password")),
    ProviderSpec("wooxy", "WOOXY", 8082, ("access_token",)),
    ProviderSpec("wwt", "WWT", 8083, ("api_key",)),
)


class SettingsError(ValueError):
    """A bad local setting; the message names the variable and never repeats a secret value."""


@dataclass
class ProviderSetting:
    spec: ProviderSpec
    base_url: str | None  # set: use that server, start no sandbox
    sandbox_port: int
    credentials: dict[str, str] | None  # None: the sandbox's defaults
    sandbox: Sandbox | None = None
    demo_ids: list[str] = field(default_factory=list)


@dataclass
class Settings:
    port: int
    moto_port: int
    providers: list[ProviderSetting]


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"{name} must be a port number (1-65535), got {raw!r}")
    return int(raw)


def parse_credentials(name: str, raw: str, fields: tuple[str, ...]) -> dict[str, str]:
    """`<P>_CREDENTIALS`: a JSON object with these string fields. Errors never include the value."""
    expected = "{" + ", ".join(f'"{f}": "..."' for f in fields) + "}"
    try:
        value = json.loads(raw)
    except ValueError:
        raise SettingsError(f"{name} is not valid JSON; expected {expected}") from None
    if not isinstance(value, dict):
        raise SettingsError(f"{name} must be a JSON object: {expected}")
    missing = [f for f in fields if not isinstance(value.get(f), str) or not value.get(f)]
    if missing:
        raise SettingsError(f"{name} needs non-empty string field(s) {', '.join(missing)}: {expected}")
    return {key: str(item) for key, item in value.items()}


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Where boto3 would find real AWS credentials. The local run replaces them with fake ones for its own calls.
AWS_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)
FAKE_CREDENTIAL_VALUES = {"", "testing", "test", "fake", "dummy"}


def real_credentials_warning(env: Mapping[str, str]) -> str | None:
    """A warning naming (never showing) the variables that look like real AWS credentials, or None."""
    found = [name for name in AWS_CREDENTIAL_VARIABLES if env.get(name, "").strip().lower() not in FAKE_CREDENTIAL_VALUES]
    if not found:
        return None
    return (
        f"make run: warning: real AWS credentials in the environment ({', '.join(found)}). The local run never calls AWS "
        "(it replaces them with fake ones; moto answers), but every process you start from this shell can use them: "
        "unset them for local work."
    )


def read_settings(env: Mapping[str, str]) -> Settings:
    providers = []
    for spec in PROVIDERS:
        raw_url = env.get(f"{spec.prefix}_BASE_URL", "").strip()
        try:
            base_url = validate_base_url(raw_url, f"{spec.prefix}_BASE_URL") if raw_url else None
        except ConfigError as exc:
            raise SettingsError(str(exc)) from None
        raw_credentials = env.get(f"{spec.prefix}_CREDENTIALS", "").strip()
        credentials = parse_credentials(f"{spec.prefix}_CREDENTIALS", raw_credentials, spec.credential_fields) if raw_credentials else None
        providers.append(ProviderSetting(spec, base_url, _port(env, f"{spec.prefix}_SANDBOX_PORT", spec.default_port), credentials))
    level = env.get("LOG_LEVEL", "WARNING").strip().upper()
    if level not in LOG_LEVELS:
        raise SettingsError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    return Settings(port=_port(env, "PORT", 3000), moto_port=_port(env, "MOTO_PORT", 8084), providers=providers)


# ---- ports: all checked before anything starts ---------------------------------------------------------------------
def needed_ports(settings: Settings) -> list[tuple[str, int]]:
    """(variable, port) for every port this run listens on: the API, each sandbox it starts, moto's endpoint."""
    sandboxes = [(f"{s.spec.prefix}_SANDBOX_PORT", s.sandbox_port) for s in settings.providers if s.base_url is None]
    return [("PORT", settings.port), *sandboxes, ("MOTO_PORT", settings.moto_port)]


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now (SO_REUSEADDR, as the servers bind)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def answers_as_this_service(port: int) -> bool:
    """Whether 127.0.0.1:port answers GET /_local/health as a running `make run` does."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_local/health", timeout=1) as answer:
            return answer.status == 200 and "routes" in json.loads(answer.read())
    except (OSError, ValueError):
        return False


def free_port_set(needed: list[tuple[str, int]]) -> list[tuple[str, int]] | None:
    """The same set moved up by 100, 200 ... until every port is free (None if none is within 1,000)."""
    for offset in range(100, 1001, 100):
        moved = [(name, port + offset) for name, port in needed]
        if all(port < 65536 and port_is_free(port) for _, port in moved):
            return moved
    return None


def port_conflicts(settings: Settings) -> str | None:
    """None when every port is free; else one message: another instance (every port busy, or the API port answering
    as this service), or which ports are busy; both with the line that runs an instance on other ports."""
    needed = needed_ports(settings)
    busy = [(name, port) for name, port in needed if not port_is_free(port)]
    if not busy:
        return None
    if answers_as_this_service(settings.port):
        head = f"another `make run` seems to be running: http://127.0.0.1:{settings.port} answers as this service. Use that one"
    elif len(busy) == len(needed):
        ports = ", ".join(str(port) for _, port in needed)
        head = f"another `make run` seems to be running: every port it needs is in use ({ports}). Use that one"
    else:
        head = "port(s) in use: " + ", ".join(f"127.0.0.1:{port} ({name})" for name, port in busy) + ". Free them"
    moved = free_port_set(needed)
    if moved is None:
        return f"{head}, or set every port variable ({', '.join(name for name, _ in needed)}) to free ports."
    line = " ".join(f"{name}={port}" for name, port in moved) + " make run"
    which = "a second one" if head.startswith("another") else "it"
    return f"{head}, or run {which} on other ports (every port variable, in one line):\n    {line}"


# ---- what the template says about each provider's function ----------------------------------------------------------
def function_env_refs(template: dict[str, Any], variable: str) -> str | None:
    """The logical id or parameter a function's environment variable refers to (e.g. WOOXY_SECRET_NAME: !Ref WooxySecret)."""
    for resource in (template.get("Resources") or {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        value = (((resource.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}).get(variable)
        if isinstance(value, dict) and isinstance(value.get("Ref"), str):
            return value["Ref"]
    return None


def start_sandboxes(settings: Settings) -> None:
    from local.sandboxes.openmarket import OpenMarketSandbox
    from local.sandboxes.wooxy import WooxySandbox
    from local.sandboxes.wwt import WwtSandbox

    classes = {"openmarket": OpenMarketSandbox, "wooxy": WooxySandbox, "wwt": WwtSandbox}
    for setting in settings.providers:
        if setting.base_url is not None:
            continue
        sandbox = classes[setting.spec.name](port=setting.sandbox_port)
        if setting.credentials is not None:
            accept_credentials(sandbox, setting.credentials)  # the sandbox accepts what the secret holds
        try:
            sandbox.start()
        except OSError as exc:
            raise SettingsError(
                f"{setting.spec.name} sandbox cannot listen on 127.0.0.1:{setting.sandbox_port} ({exc.strerror}); "
                f"set {setting.spec.prefix}_SANDBOX_PORT"
            ) from None
        setting.sandbox = sandbox
        setting.demo_ids = sandbox.seed_demo()
        setting.base_url = sandbox.base_url


def accept_credentials(sandbox: Any, credentials: dict[str, str]) -> None:
    if hasattr(sandbox, "credentials"):  # OpenMarket
        sandbox.credentials = {"account_id": credentials["account_id"], "password": credentials["password"]}
    elif hasattr(sandbox, "access_token"):  # Wooxy
        sandbox.access_token = credentials["access_token"]
    elif hasattr(sandbox, "api_key"):  # WWT
        sandbox.api_key = credentials["api_key"]


def sandbox_credentials(name: str) -> dict[str, str]:
    from local.sandboxes import openmarket, wooxy, wwt

    return dict({"openmarket": openmarket, "wooxy": wooxy, "wwt": wwt}[name].DEFAULT_CREDENTIALS)


def stack_inputs(settings: Settings, template: dict[str, Any], env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """LocalAws's parameter overrides and secret values: each provider's function pointed at its sandbox (or
    <P>_BASE_URL) with credentials it accepts, and RECHECK_DELAYS (e.g. RECHECK_DELAYS=1,1,2 make run) applied."""
    parameters: dict[str, str] = {}
    secrets: dict[str, dict[str, str]] = {}
    for setting in settings.providers:
        base_param = function_env_refs(template, f"{setting.spec.prefix}_BASE_URL")
        if base_param:
            parameters[base_param] = setting.base_url or ""
        secret = function_env_refs(template, f"{setting.spec.prefix}_SECRET_NAME")
        if secret:
            secrets[secret] = setting.credentials or sandbox_credentials(setting.spec.name)
    delays_param = function_env_refs(template, "RECHECK_DELAYS")
    if delays_param and env.get("RECHECK_DELAYS", "").strip():
        from sms_status.config import ConfigError, parse_recheck_delays

        try:
            parse_recheck_delays(env["RECHECK_DELAYS"])
        except ConfigError as exc:
            raise SettingsError(str(exc)) from None
        parameters[delays_param] = env["RECHECK_DELAYS"].replace(" ", "")
    return parameters, secrets


def start_queue_workers(aws: Any, log: Any = print) -> list[Any]:
    """One poller per enabled queue -> function mapping of the stack (Lambda's SQS event sources)."""
    from local.queue_worker import QueueWorker

    sqs = aws.client("sqs")
    return [QueueWorker(mapping, sqs, log=log).start() for mapping in aws.mappings if mapping.enabled]


# ---- change events -------------------------------------------------------------------------------------------------
class ChangeEventReader:
    """Drains the capture queue the EventBridge rule fills; prints one line per status change."""

    def __init__(self, aws: Any, sink: Any, log: Any = print) -> None:
        self.aws = aws
        self.sink = sink
        self.log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="change-events", daemon=True)

    def start(self) -> ChangeEventReader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        sqs = self.aws.client("sqs")
        while not self._stop.is_set():
            try:
                received = sqs.receive_message(QueueUrl=self.aws.capture_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
                messages = received.get("Messages", [])
            except Exception as exc:
                self.log(f"[events] cannot read the capture queue: {type(exc).__name__}")
                self._stop.wait(1)
                continue
            for message in messages:
                self._show(message["Body"])
                sqs.delete_message(QueueUrl=self.aws.capture_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _show(self, body: str) -> None:
        try:
            event = json.loads(body)
        except ValueError:
            return
        self.sink.append(event)
        detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
        report = detail.get("report") if isinstance(detail.get("report"), dict) else {}
        self.log(
            f"[event] {event.get('detail-type')}: {report.get('provider')} {report.get('id')} "
            f"{detail.get('previous_status')} -> {report.get('status')}{' (final)' if report.get('final') else ''}"
        )


# ---- banner --------------------------------------------------------------------------------------------------------
README = ROOT / "README.md"
TOUR_HEADING = "## Quickstart: a five-minute tour"
DEFAULT_API = "http://127.0.0.1:3000"


def tour_steps(readme: str) -> list[tuple[str, list[str]]]:
    """The README's tour, the one copy: (step title, the lines of its ```sh blocks) per step, in order."""
    if TOUR_HEADING not in readme:
        return []
    section = readme.split(TOUR_HEADING, 1)[1].split("\n## ", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    in_block = False
    for line in section.splitlines():
        if not in_block and re.fullmatch(r"\*\*(\d+\..*)\*\*", line.strip()):
            steps.append((line.strip().strip("*"), []))
        elif line.startswith("```"):
            in_block = line.strip() == "```sh"
        elif in_block and steps:
            steps[-1][1].append(line)
    return steps


def for_this_run(line: str, base: str, sandboxes: dict[str, str | None]) -> str:
    """A tour line with this run's URLs: the API's port, each sandbox's; the enqueue helpers told the port.
    A line that needs a sandbox this run does not start (its provider is `<P>_BASE_URL`) is printed as a comment."""
    line = line.replace(DEFAULT_API, base)
    for default_url, url in sandboxes.items():
        if default_url in line:
            if url is None:
                return f"# (no sandbox for this provider in this run) {line}"
            line = line.replace(default_url, url)
    if base != DEFAULT_API:  # local.enqueue finds the service through PORT (default 3000), which another shell has not set
        line = line.replace("make enqueue ", f"PORT={base.rsplit(':', 1)[1]} make enqueue ")
        line = re.sub(r"(-m local\.enqueue [^#]*?)\s*$", rf"\1 --url {base}", line)
    return line


def tour(settings: Settings, base: str, readme: str) -> list[str]:
    sandboxes = {f"http://127.0.0.1:{s.spec.default_port}": (s.base_url if s.sandbox is not None else None) for s in settings.providers}
    steps = tour_steps(readme)
    if not steps:
        return ["  (README.md has no tour: see docs/local.md)"]
    lines: list[str] = []
    for title, commands in steps:
        lines += [f"  {title}"] + [f"    {for_this_run(command, base, sandboxes)}" for command in commands] + [""]
    return lines


def banner(settings: Settings, api: Any, aws: Any, readme: str | None = None) -> str:
    base = f"http://127.0.0.1:{api.port}"
    lines = [
        "",
        "sms-status, running locally (moto for AWS, provider sandboxes on 127.0.0.1)",
        "",
        f"HTTP API  {base}   (routes from api/openapi.yaml; LOCAL MODE DOES NOT CHECK SIGV4: requests are unsigned)",
    ]
    lines += [f"  {route.method:4} {route.resource}" for route in api.routes]
    lines += [f"  (note: {note})" for note in api.notes + aws.notes]
    lines += ["", "Providers"]
    for setting in settings.providers:
        where = "sandbox" if setting.sandbox is not None else "from " + setting.spec.prefix + "_BASE_URL: the tour's ids are the sandbox's"
        ids = f"  demo ids: {', '.join(setting.demo_ids)}" if setting.demo_ids else ""
        lines.append(f"  {setting.spec.name:10} {setting.base_url}  ({where}){ids}")
    lines += ["", "Queues (tracking path; moto's, reached through the AWS (moto) endpoint below, never AWS)"]
    lines += [f"  {m.function.short_name:19} -> {m.queue_url}" for m in aws.mappings] or ["  (none in template.yaml yet)"]
    lines += ["", "The tour (README.md, Quickstart), for this run: paste into another shell (bash or zsh)", ""]
    lines += tour(settings, base, README.read_text() if readme is None else readme)
    if aws.endpoint_url:
        lines += [
            f"AWS (moto)  {aws.endpoint_url}   shares this process's state, e.g.",
            "  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \\",
            f"      aws --endpoint-url {aws.endpoint_url} --region us-east-1 sqs list-queues",
        ]
        sender = next((m for m in aws.mappings if "Recheck" not in m.queue_url), None)
        if sender is not None:  # what `make enqueue` does, as a sender would
            lines += [
                "  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \\",
                f"      aws --endpoint-url {aws.endpoint_url} --region us-east-1 sqs send-message \\",
                f'      --queue-url {sender.queue_url} --message-body \'{{"ids": ["<id>"]}}\'',
            ]
        lines.append("")
    lines += ["Ready. Ctrl-C stops everything.", ""]
    return "\n".join(lines)


# ---- main -----------------------------------------------------------------------------------------------------------
def log(line: str) -> None:
    print(line, flush=True)


class HideMetrics(io.TextIOBase):
    """stdout without Powertools' EMF metric blobs: in Lambda they go to CloudWatch; here they would drown the
    banner and the request lines (single_metric prints even with POWERTOOLS_METRICS_DISABLED)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self._skip_newline = False

    def write(self, text: str) -> int:
        if text.startswith('{"_aws":'):
            self._skip_newline = True  # print() writes the line ending separately
            return len(text)
        if self._skip_newline and text == "\n":
            self._skip_newline = False
            return len(text)
        self._skip_newline = False
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()


STOP_POLL_SECONDS = 0.2  # how soon a recorded Ctrl-C / SIGTERM is acted on


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    if os.environ.get("LOCAL_SHOW_METRICS", "") != "1":
        sys.stdout = HideMetrics(sys.stdout)
    try:
        settings = read_settings(env)
        conflicts = port_conflicts(settings)  # before anything starts: one message naming every port, not one at a time
        if conflicts:
            raise SettingsError(conflicts)
        template = load_template_checked(TEMPLATE)
        from local.webhooks import read_webhook_settings

        webhook = read_webhook_settings(env, template)
    except (SettingsError, LocalSetupError) as exc:
        print(f"make run: {exc}", file=sys.stderr, flush=True)
        return 2
    warning = real_credentials_warning(env)
    if warning:
        print(warning, file=sys.stderr, flush=True)

    # A signal handler must take no lock: a second signal arriving inside it (Ctrl-C twice, or `timeout`
    # forwarding SIGTERM) would wait forever for the lock the first one holds. So it only records the signal.
    stop_signals: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: stop_signals.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, _frame: stop_signals.append(signum))

    from local.api_server import ApiServer
    from local.queue_worker import QueueWorker
    from local.stack import LocalAws
    from local.webhooks import SECRET_LOGICAL_ID, LocalWebhook

    aws: LocalAws | None = None
    api: ApiServer | None = None
    workers: list[QueueWorker] = []
    events: ChangeEventReader | None = None
    hook: LocalWebhook | None = None
    try:
        start_sandboxes(settings)
        parameters, secrets = stack_inputs(settings, template, env)
        if webhook is not None:  # the template's webhook resources exist only with a URL, as deployed
            parameters.update(webhook.parameters)
            secrets[SECRET_LOGICAL_ID] = webhook.secret
        aws = LocalAws(parameters, secrets).start()
        try:
            aws.serve_endpoint(settings.moto_port)  # also serves bulk results_url (local.api_server)
        except ImportError:  # moto[server] (flask) not installed: everything but the CLI endpoint still works
            aws.notes.append("moto's server is not installed (moto[server]): no endpoint for `aws --endpoint-url`")
        except OSError as exc:
            raise SettingsError(f"cannot listen on 127.0.0.1:{settings.moto_port} ({exc.strerror}); set MOTO_PORT") from None
        api = ApiServer(aws, settings.port, log=log)
        try:
            api.start()
        except OSError as exc:
            raise SettingsError(f"cannot listen on 127.0.0.1:{settings.port} ({exc.strerror}); set PORT") from None
        workers = start_queue_workers(aws, log)
        api.workers = workers  # their counters in GET /_local/queues
        events = ChangeEventReader(aws, api.change_events, log=log).start()
        if webhook is not None:
            hook = LocalWebhook.from_stack(aws, webhook, log=log).start()
            aws.notes.append(hook.describe())
        log(banner(settings, api, aws))
        while not stop_signals:
            time.sleep(STOP_POLL_SECONDS)
        log("stopping ...")
        return 0
    except (SettingsError, LocalSetupError) as exc:
        print(f"make run: {exc}", file=sys.stderr, flush=True)
        return 2
    finally:
        # Reverse order of start: no new requests, then no new batches, then the fakes behind them.
        if api is not None:
            api.stop()
        for worker in workers:  # all at once: each finishes its long poll and the batches in hand
            worker.request_stop()
        for worker in workers:
            worker.stop()
        if events is not None:
            events.stop()
        if hook is not None:
            hook.stop()
        for setting in settings.providers:
            if setting.sandbox is not None:
                setting.sandbox.stop()
        if aws is not None:
            aws.stop()
        log("stopped.")


if __name__ == "__main__":
    sys.exit(main())

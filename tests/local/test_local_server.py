"""`python -m local.run` as a subprocess, exercised over real HTTP on 127.0.0.1 (the way `make run` is used).

One server for the module: its own OpenMarket and WWT sandboxes, and Wooxy pointed (WOOXY_BASE_URL) at a
sandbox this test runs in-process, so the test sees the requests the server's Wooxy function sends.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from local.queue_worker import POLL_SECONDS
from local.sandboxes.wooxy import WooxySandbox

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 90.0  # cold imports (moto, boto3) and building the local stack
STOP_TIMEOUT = 15.0
# The first re-check of a non-final message is 30 s after the first check (sms_status.tracking).
RECHECK_TIMEOUT = 90.0
PROVIDER_ENV = ("BASE_URL", "CREDENTIALS", "SANDBOX_PORT")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_free(port: int) -> bool:
    """Whether a server could listen there now (SO_REUSEADDR like the servers: TIME_WAIT leftovers do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def http(method: str, url: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class LocalServer:
    def __init__(self, tmp: Path, extra_env: dict[str, str]) -> None:
        self.api_port, self.openmarket_port, self.wooxy_port, self.wwt_port, self.moto_port = free_ports(5)
        env = {key: value for key, value in os.environ.items() if not key.endswith(tuple(f"_{suffix}" for suffix in PROVIDER_ENV))}
        env.update(
            PORT=str(self.api_port),
            OPENMARKET_SANDBOX_PORT=str(self.openmarket_port),
            WOOXY_SANDBOX_PORT=str(self.wooxy_port),
            WWT_SANDBOX_PORT=str(self.wwt_port),
            MOTO_PORT=str(self.moto_port),
            PYTHONUNBUFFERED="1",
        )
        env.update(extra_env)
        self.log_path = tmp / "local-run.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "local.run"], cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"local.run exited with {self.process.returncode}:\n{self.output()}")
            try:
                return http("GET", f"{self.url}/_local/health", timeout=2)[0] == 200
            except OSError:
                return False

        wait_for(ready, READY_TIMEOUT, "the local server to answer")

    def stop(self, stop_signal: signal.Signals = signal.SIGINT) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(stop_signal)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
                self._log.close()
                return None
        self._log.close()
        return self.process.returncode


@pytest.fixture(scope="module")
def wooxy() -> Iterator[WooxySandbox]:
    with WooxySandbox(hang=10) as sandbox:
        sandbox.seed_demo()
        yield sandbox


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, wooxy: WooxySandbox) -> Iterator[LocalServer]:
    local = LocalServer(tmp_path_factory.mktemp("local-run"), {"WOOXY_BASE_URL": wooxy.base_url})
    try:
        local.wait_ready()
        yield local
    finally:
        local.stop()


def openapi_paths() -> dict[str, Any]:
    with (ROOT / "api" / "openapi.yaml").open() as handle:
        return yaml.safe_load(handle)["paths"]


# ---- what it serves and says -------------------------------------------------------------------------------------
def test_serves_every_route_of_the_openapi_document(server: LocalServer) -> None:
    status, health = http("GET", f"{server.url}/_local/health")
    expected = {
        f"{method.upper()} {path}" for path, operations in openapi_paths().items() for method in operations if method != "parameters"
    }
    assert status == 200
    assert set(health["routes"]) == expected


def test_banner_names_routes_says_sigv4_is_not_checked_and_gives_commands(server: LocalServer) -> None:
    output = server.output()
    assert "DOES NOT CHECK SIGV4" in output
    assert f"curl -s {server.url}/openmarket/messages/12004-0328K-1232U-18C21" in output
    assert f"curl -s {server.url}/wwt/messages/211" in output
    assert f"curl -s -X POST {server.url}/wwt/status" in output
    assert "(from WOOXY_BASE_URL)" in output
    assert "python -m local.enqueue" in output


def test_a_provider_pointed_elsewhere_gets_no_sandbox(server: LocalServer) -> None:
    assert port_is_free(server.wooxy_port)
    assert not port_is_free(server.openmarket_port)
    assert not port_is_free(server.wwt_port)


# ---- the proxy routes ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "provider", "key"),
    [
        ("/openmarket/messages/12004-0328K-1232U-18C21", "openmarket", "12004-0328K-1232U-18C21"),
        ("/wwt/messages/211", "wwt", "211"),
        ("/wwt/references/extid19", "wwt", "extid19"),
    ],
)
def test_single_id_routes_answer_reports_from_the_sandboxes(server: LocalServer, path: str, provider: str, key: str) -> None:
    status, report = http("GET", server.url + path)
    assert status == 200
    assert (report["provider"], report["id"]) == (provider, key)
    assert report["status"] in {"pending", "sent", "delivered"}


def test_wooxy_goes_to_the_server_named_by_wooxy_base_url(server: LocalServer, wooxy: WooxySandbox) -> None:
    before = len(wooxy.requests)
    status, report = http("GET", f"{server.url}/wooxy/messages/5d91537bd132fdf45916520a")
    assert status == 200
    assert (report["provider"], report["id"]) == ("wooxy", "5d91537bd132fdf45916520a")
    assert report["recipient"] == "+15555555"  # what the test's sandbox seeded
    assert len(wooxy.requests) == before + 1
    assert wooxy.requests[-1].path == "/v3/sms/info"


def test_unknown_message_is_404_not_found_report(server: LocalServer) -> None:
    status, report = http("GET", f"{server.url}/wwt/messages/999999")
    assert status == 404
    assert report["status"] == "not_found"


@pytest.mark.parametrize(
    ("provider", "ids"),
    [
        ("openmarket", ["12004-0328K-1232U-18C21", "0112C-0402H-14019-14Y7K"]),
        ("wooxy", ["5d91537bd132fdf45916520b", "5d91537bd132fdf45916520a", "5d91537bd132fdf45916520b"]),
        ("wwt", ["212", "211"]),
    ],
)
def test_batch_routes_answer_one_report_per_distinct_id_in_order(server: LocalServer, provider: str, ids: list[str]) -> None:
    status, body = http("POST", f"{server.url}/{provider}/status", {"ids": ids})
    assert status == 200
    assert body["provider"] == provider
    assert [report["id"] for report in body["results"]] == list(dict.fromkeys(ids))


def test_wwt_batch_by_references(server: LocalServer) -> None:
    status, body = http("POST", f"{server.url}/wwt/status", {"references": ["extid20", "extid19"]})
    assert status == 200
    assert [report["id"] for report in body["results"]] == ["extid20", "extid19"]


def test_bad_batch_body_is_the_pinned_400(server: LocalServer) -> None:
    status, body = http("POST", f"{server.url}/wooxy/status", b"{not json")
    assert status == 400
    assert body["error"]["code"] == "invalid_request"


def test_unknown_route_is_the_pinned_404(server: LocalServer) -> None:
    status, body = http("GET", f"{server.url}/sms/messages/1")
    assert status == 404
    assert body == {"error": {"code": "invalid_request", "message": "no route GET /sms/messages/1", "details": None}}


# ---- the bulk routes: the real state machine on moto's interpreter ---------------------------------------------------
def test_bulk_route_runs_the_state_machine_in_chunks_of_100(server: LocalServer, wooxy: WooxySandbox) -> None:
    ids = ["5d91537bd132fdf45916520a"] + [f"{n:024x}" for n in range(1, 150)]
    wooxy.reset_stats()
    status, body = http("POST", f"{server.url}/wooxy/status/bulk", {"ids": ids})
    assert status == 200, body
    assert body["provider"] == "wooxy"
    assert [report["id"] for report in body["results"]] == ids
    assert body["results"][0]["status"] != "not_found"
    assert {report["status"] for report in body["results"][1:]} == {"not_found"}
    assert len(wooxy.requests) == 2  # 100 + 50 ids
    assert wooxy.max_ids_per_request <= 100


def test_bulk_route_maps_an_invalid_input_to_400(server: LocalServer) -> None:
    status, body = http("POST", f"{server.url}/wooxy/status/bulk", {"ids": []})
    assert status == 400
    assert body["error"]["code"] == "invalid_request"


def test_bulk_job_runs_to_a_results_file_served_by_the_local_s3_endpoint(server: LocalServer, wooxy: WooxySandbox) -> None:
    ids = ["5d91537bd132fdf45916520a"] + [f"{n:024x}" for n in range(1, 250)]
    status, job = http("POST", f"{server.url}/wooxy/bulk-jobs", {"ids": ids + ids[:10]})
    assert status == 202, job
    assert (job["state"], job["total"], job["results_url"]) == ("running", 250, None)

    def finished() -> Any:
        status, body = http("GET", f"{server.url}/wooxy/bulk-jobs/{job['job_id']}")
        assert status == 200, body
        return body if body["state"] != "running" else None

    done = wait_for(finished, 60, "the bulk job to finish", interval=0.2)
    assert (done["state"], done["done"]) == ("succeeded", 250)
    assert done["counts"]["not_found"] == 249
    assert done["results_url"].startswith("http://127.0.0.1:")  # the local S3 endpoint, never AWS
    with urllib.request.urlopen(done["results_url"], timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
        lines = response.read().decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ids  # one report per distinct id, request order
    assert http("GET", f"{server.url}/wooxy/bulk-jobs/{'0' * 32}")[0] == 404


# ---- the queue path ------------------------------------------------------------------------------------------------
def test_enqueued_message_is_tracked_until_final(server: LocalServer) -> None:
    # Given a fresh OpenMarket ticket, accepted now and delivered 10 minutes later (sandbox time)
    ticket = f"LOCAL-{int(time.time() * 1000)}"
    sandbox = f"http://127.0.0.1:{server.openmarket_port}"
    assert http("POST", f"{sandbox}/_sandbox/messages", {"id": ticket, "steps": [[0, 2], [600, 4]]})[0] == 200

    # When it is enqueued from the shell
    enqueue = subprocess.run(
        [sys.executable, "-m", "local.enqueue", "openmarket", ticket, "--context", '{"campaign": "local-test"}', "--url", server.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert enqueue.returncode == 0, enqueue.stderr
    assert f"/tracked/openmarket/{ticket}" in enqueue.stdout

    # Then the queue consumer stores the first, non-final status
    def tracked() -> dict[str, Any] | None:
        status, body = http("GET", f"{server.url}/tracked/openmarket/{ticket}")
        return body if status == 200 else None

    first = wait_for(tracked, 30, "the first stored status")
    assert (first["report"]["status"], first["report"]["final"]) == ("pending", False)
    assert first["context"] == {"campaign": "local-test"}

    # And when the provider delivers it, the delayed re-check stores the final status
    assert http("POST", f"{sandbox}/_sandbox/clock", {"advance": 600})[0] == 200
    final = wait_for(lambda: (body := tracked()) and body["report"]["final"] and body, RECHECK_TIMEOUT, "the re-check", interval=1)
    assert final["report"]["status"] == "delivered"
    assert [entry["status"] for entry in final["history"]] == ["pending", "delivered"]

    # And both changes were published as events on the bus
    events = wait_for(lambda: _events_for(server, ticket) if len(_events_for(server, ticket)) >= 2 else None, 10, "the change events")
    assert [event["detail"]["report"]["status"] for event in events] == ["pending", "delivered"]
    assert events[-1]["detail"]["context"] == {"campaign": "local-test"}

    # And the local delivery analytics count it, as the deployed dashboard would
    status, analytics = http("GET", f"{server.url}/_local/analytics")
    assert status == 200
    openmarket = analytics["providers"]["openmarket"]
    assert openmarket["final"]["delivered"] >= 1
    assert openmarket["delivery_rate"] is not None
    assert openmarket["time_to_final_seconds"]["p50"] >= 0


def _events_for(server: LocalServer, ticket: str) -> list[dict[str, Any]]:
    events = http("GET", f"{server.url}/_local/events")[1]["events"]
    return [event for event in events if event.get("detail", {}).get("report", {}).get("id") == ticket]


def test_a_malformed_queue_message_is_redriven_to_the_dlq_not_lost(server: LocalServer) -> None:
    # Given the WWT tracking queue, reached through moto's endpoint like `aws --endpoint-url` would, with a short
    # visibility timeout so the retries happen within a test (deployed: 180 s)
    sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{server.moto_port}", region_name="us-east-1")
    queue_url = next(q["url"] for q in http("GET", f"{server.url}/_local/queues")[1]["queues"] if q["queue"] == "WwtTrackingQueue")
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy", "VisibilityTimeout"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    dlq_url = sqs.get_queue_url(QueueName=redrive["deadLetterTargetArn"].rsplit(":", 1)[1])["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "1"})
    # A long poll already waiting took the old timeout with it (SQS applies the value at receive time): let the
    # poller's current 1 s long poll end first. Not a timing assertion, a settling wait.
    time.sleep(2 * POLL_SECONDS)
    try:
        # When a message that can never succeed is enqueued
        body = {"ids": "not-a-list"}
        assert http("POST", f"{server.url}/_local/enqueue/wwt", body)[0] == 202

        # Then it fails on every receive and, after maxReceiveCount receives, is in the DLQ: unchanged, not lost
        def in_dlq() -> list[dict[str, Any]]:
            return sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1, AttributeNames=["All"]).get("Messages", [])

        (message,) = wait_for(in_dlq, 20 + 2 * int(redrive["maxReceiveCount"]), "the record to reach the DLQ")
        assert json.loads(message["Body"]) == body
        assert int(message["Attributes"]["ApproximateReceiveCount"]) >= int(redrive["maxReceiveCount"])
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
    finally:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": attributes["VisibilityTimeout"]})


# ---- settings errors and shutdown -----------------------------------------------------------------------------------
def run_briefly(env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.endswith(tuple(f"_{suffix}" for suffix in PROVIDER_ENV))}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-m", "local.run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("value", ['{"access_token": "", "extra": "s3cr3t-value"}', "{s3cr3t-value", '["s3cr3t-value"]'])
def test_bad_credentials_json_is_a_clear_error_that_never_prints_the_value(value: str) -> None:
    result = run_briefly({"WOOXY_CREDENTIALS": value})
    assert result.returncode == 2
    assert "WOOXY_CREDENTIALS" in result.stderr
    assert "s3cr3t-value" not in result.stderr + result.stdout


def test_a_burst_of_signals_still_stops_everything(tmp_path: Path) -> None:
    # Ctrl-C pressed repeatedly, or `timeout` forwarding SIGTERM right after a SIGINT: a handler that took a
    # lock deadlocked when the next signal arrived inside it.
    local = LocalServer(tmp_path, {})
    local.wait_ready()
    for _ in range(50):
        local.process.send_signal(signal.SIGINT)
        local.process.send_signal(signal.SIGTERM)
    assert local.stop(signal.SIGINT) == 0, local.output()


def test_a_bad_log_level_stops_the_run_at_once() -> None:
    result = run_briefly({"LOG_LEVEL": "LOUD"})
    assert result.returncode == 2
    assert "LOG_LEVEL" in result.stderr


def test_plain_http_base_url_off_loopback_is_refused() -> None:
    result = run_briefly({"WWT_BASE_URL": "http://wwt.example.com"})
    assert result.returncode == 2
    assert "WWT_BASE_URL" in result.stderr


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_everything_and_frees_the_ports(tmp_path: Path, stop_signal: signal.Signals) -> None:
    local = LocalServer(tmp_path, {})
    local.wait_ready()
    ports = (local.api_port, local.openmarket_port, local.wooxy_port, local.wwt_port, local.moto_port)
    assert not any(port_is_free(port) for port in ports)

    returncode = local.stop(stop_signal)  # None when it did not exit within STOP_TIMEOUT and had to be killed

    assert returncode == 0, local.output()
    assert all(port_is_free(port) for port in ports)
    assert "stopped." in local.output()

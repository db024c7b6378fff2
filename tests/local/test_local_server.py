"""`python -m local.run` as a subprocess, exercised over real HTTP on 127.0.0.1 (the way `make run` is used).

One server for the module: its own OpenMarket and WWT sandboxes, and Wooxy pointed (WOOXY_BASE_URL) at a
sandbox this test runs in-process, so the test sees the requests the server's Wooxy function sends.
"""

from __future__ import annotations

import http.client as http_client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from local.queue_worker import POLL_SECONDS
from local.run import port_is_free
from local.sandboxes.wooxy import WooxySandbox
from tests.local.harness import PROVIDER_ENV, ROOT, LocalServer, free_ports, http, wait_for

# The first re-check of a non-final message is 30 s after the first check (sms_status.tracking).
RECHECK_TIMEOUT = 90.0


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
        wait_for(lambda: "Ready. Ctrl-C" in local.output(), 30, "the banner")  # printed just after the API starts answering
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
    assert f"curl -s -w '\\n' {server.url}/openmarket/messages/12004-0328K-1232U-18C21" in output
    assert f"curl -s -w '\\n' {server.url}/wwt/messages/211" in output
    assert f"curl -s -w '\\n' -X POST {server.url}/wwt/status" in output
    assert "(from WOOXY_BASE_URL: the tour's ids are the sandbox's)" in output
    assert "python -m local.enqueue" in output


def readme_tour_commands() -> list[str]:
    """Every line of the README tour's ```sh blocks (read here on its own, not with the banner's code)."""
    section = (ROOT / "README.md").read_text().split("## Quickstart: a five-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```sh\n")[1:]
    return [line for block in blocks for line in block.split("\n```", 1)[0].splitlines()]


def test_the_banner_prints_the_readme_tour_with_this_runs_ports(server: LocalServer) -> None:
    # One copy of the tour: what `make run` prints is the README's, with this run's API and sandbox ports (and the
    # port told to the enqueue helpers, which another shell would otherwise look for on 3000).
    port = str(server.api_port)
    expected = []
    for line in readme_tour_commands():
        line = line.replace("http://127.0.0.1:3000", server.url).replace(
            "http://127.0.0.1:8081", f"http://127.0.0.1:{server.openmarket_port}"
        )
        line = line.replace("make enqueue ", f"PORT={port} make enqueue ")
        if "-m local.enqueue" in line:
            line = line.rstrip() + f" --url {server.url}"
        expected.append(line.strip())
    banner = server.output().split("The tour (README.md, Quickstart)", 1)[1].split("AWS (moto)", 1)[0]
    printed = [line.strip() for line in banner.splitlines()[1:] if line.startswith("    ")]
    assert printed == expected
    assert len(expected) > 20


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


# ---- hostile input: always the pinned error JSON, never a 500 or an HTML page ----------------------------------------
def raw_request(server: LocalServer, head: str, body: bytes = b"") -> tuple[int, dict[str, str], Any]:
    """One request written byte for byte (so headers urllib would fix up are sent as they are)."""
    with socket.create_connection(("127.0.0.1", server.api_port), timeout=30) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        response = http_client.HTTPResponse(sock)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(response.read() or b"null")


@pytest.mark.parametrize("route", ["/openmarket/status", "/wooxy/status", "/wwt/status", "/wooxy/status/bulk", "/wooxy/bulk-jobs"])
def test_a_body_that_is_not_utf8_is_a_400_on_every_body_route(server: LocalServer, route: str) -> None:
    status, body = http("POST", server.url + route, b"\x10\xefj")
    assert status == 400
    assert body["error"]["code"] == "invalid_request"
    assert "UTF-8" in body["error"]["message"]


@pytest.mark.parametrize(
    ("path", "answered"),
    [
        ("/wooxy/messages/a%20b", "a b"),  # API Gateway passes the id on encoded: decoded once, by the handler
        ("/wooxy/messages/a%2Fb", "a/b"),
        ("/openmarket/messages/" + "%C3%A9" * 11, "é" * 11),  # 11 characters, 66 encoded: within OpenMarket's 64
    ],
)
def test_path_ids_are_answered_decoded(server: LocalServer, path: str, answered: str) -> None:
    status, report = http("GET", server.url + path)
    assert status == 404  # unknown to the sandboxes: a not_found report, for the id as meant
    assert (report["status"], report["id"]) == ("not_found", answered)


@pytest.mark.parametrize("path", ["/wooxy/messages/%FF", "/wooxy/messages/a%00b", "/tracked/wooxy/%0A"])
def test_path_ids_that_decode_to_no_id_are_400s(server: LocalServer, path: str) -> None:
    status, body = http("GET", server.url + path)
    assert (status, body["error"]["code"]) == (400, "invalid_request")


@pytest.mark.parametrize("method", ["TRACE", "PUT", "DELETE", "PATCH", "BREW"])
def test_a_method_the_route_does_not_have_is_405_error_json(server: LocalServer, method: str) -> None:
    status, headers, body = raw_request(server, f"{method} /wooxy/messages/x HTTP/1.1\nHost: 127.0.0.1\nContent-Length: 0\n")
    assert (status, headers["allow"], headers["content-type"]) == (405, "GET", "application/json")
    assert body["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("length", "status"),
    [("-5", 400), ("abc", 400), ("1e3", 400), ("\u00b2", 400), (str(10 * 1024 * 1024 + 1), 413), ("99999999999999999999", 413)],
)
def test_content_length_is_checked_before_anything_is_read(server: LocalServer, length: str, status: int) -> None:
    answered, _, body = raw_request(server, f"POST /wooxy/status HTTP/1.1\nHost: 127.0.0.1\nContent-Length: {length}\n")
    assert (answered, body["error"]["code"]) == (status, "invalid_request")


@pytest.mark.parametrize("host", ["evil.example", "evil.example:3000", "127.0.0.1.evil.example", "10.0.0.1"])
def test_only_loopback_host_names_are_answered(server: LocalServer, host: str) -> None:
    status, _, body = raw_request(server, f"GET /wooxy/messages/x HTTP/1.1\nHost: {host}\n")
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    assert "Host" in body["error"]["message"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:3000", "LOCALHOST", "[::1]:8080"])
def test_loopback_host_names_are_answered(server: LocalServer, host: str) -> None:
    status, _, _ = raw_request(server, f"GET /sms/nothing HTTP/1.1\nHost: {host}\n")
    assert status == 404  # reached the router


def test_a_request_line_http_server_cannot_parse_is_error_json_too(server: LocalServer) -> None:
    status, headers, body = raw_request(server, "GET /x HTTP/1.1\nHost: 127.0.0.1\nX-Long: " + "a" * 70_000 + "\n")
    assert status == 431  # http.server's own answer to a header line over 64 KiB
    assert headers["content-type"] == "application/json"
    assert body["error"]["code"] == "invalid_request"


def log_lines(server: LocalServer) -> list[dict[str, Any]]:
    """The functions' JSON log lines in the server's output (other lines, and any cut by a concurrent print, skipped)."""
    lines = []
    for text in server.output().splitlines():
        with suppress(ValueError):
            line = json.loads(text) if text.startswith('{"level"') else None
            if isinstance(line, dict):
                lines.append(line)
    return lines


def test_each_function_logs_under_its_own_service_name(server: LocalServer) -> None:
    for path in ("/wooxy/messages/%00", "/wwt/messages/%00", "/openmarket/messages/%00"):
        assert http("GET", server.url + path)[0] == 400  # each logs "request failed"
    services = {line["function_name"].rsplit("-", 1)[-1]: line["service"] for line in log_lines(server) if "function_name" in line}
    assert services["WooxyFunction"] == "wooxy"
    assert services["WwtFunction"] == "wwt"
    assert services["OpenMarketFunction"] == "openmarket"


def test_the_moto_endpoint_sends_no_cors_headers(server: LocalServer) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{server.moto_port}/", headers={"Origin": "http://evil.example"}, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
            headers = dict(response.headers)
    except urllib.error.HTTPError as error:
        headers = dict(error.headers)
    assert not any(name.lower().startswith("access-control-") for name in headers)


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
    # visibility timeout so the retries happen within a test (deployed: 6 x the function timeout), still longer than
    # the batching window (2 s), as deployed: a batch never holds a message twice
    sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{server.moto_port}", region_name="us-east-1")
    queue_url = next(q["url"] for q in http("GET", f"{server.url}/_local/queues")[1]["queues"] if q["queue"] == "WwtTrackingQueue")
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy", "VisibilityTimeout"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    dlq_url = sqs.get_queue_url(QueueName=redrive["deadLetterTargetArn"].rsplit(":", 1)[1])["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "3"})
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

        (message,) = wait_for(in_dlq, 20 + 5 * int(redrive["maxReceiveCount"]), "the record to reach the DLQ")
        assert json.loads(message["Body"]) == body
        assert int(message["Attributes"]["ApproximateReceiveCount"]) >= int(redrive["maxReceiveCount"])
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])

        # And the poller's and the function's counters show each failed receive, and no throttle: the queue's
        # MaximumConcurrency stays within the function's reserved concurrency, as deployed
        poller = next(q for q in http("GET", f"{server.url}/_local/queues")[1]["queues"] if q["queue"] == "WwtTrackingQueue")["poller"]
        assert poller["failed_records"] >= int(redrive["maxReceiveCount"])
        assert poller["throttled_batches"] == 0
        functions = {f["function"]: f for f in http("GET", f"{server.url}/_local/functions")[1]["functions"]}
        consumer = functions[poller["function"]]
        assert consumer["invocations"] >= int(redrive["maxReceiveCount"])
        assert consumer["throttles"] == 0
        assert consumer["max_concurrent"] <= consumer["reserved_concurrency"]
    finally:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": attributes["VisibilityTimeout"]})


# ---- settings errors and shutdown -----------------------------------------------------------------------------------
def run_briefly(env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.endswith(tuple(f"_{suffix}" for suffix in PROVIDER_ENV))}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-m", "local.run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


PORT_VARIABLES = ("PORT", "OPENMARKET_SANDBOX_PORT", "WOOXY_SANDBOX_PORT", "WWT_SANDBOX_PORT", "MOTO_PORT")


def run_line(message: str) -> str:
    """The one line of a port message that runs an instance on other ports."""
    (line,) = [line.strip() for line in message.splitlines() if line.strip().endswith("make run") and "PORT=" in line]
    return line


def test_a_second_run_on_the_same_ports_says_at_once_that_one_is_running_and_how_to_run_two(server: LocalServer) -> None:
    # Given the module's server (its Wooxy sandbox replaced, so one port of the default set is free), when a second
    # run is started on the same ports
    ports = (server.api_port, server.openmarket_port, server.wooxy_port, server.wwt_port, server.moto_port)
    started = time.monotonic()
    result = run_briefly(dict(zip(PORT_VARIABLES, map(str, ports), strict=True)))

    # Then it stops at once, before starting anything, with one message: another instance runs, and one line
    # setting every port variable to free ports
    assert result.returncode == 2, result.stdout + result.stderr
    assert time.monotonic() - started < 20
    assert f"another `make run` seems to be running: {server.url} answers as this service" in result.stderr
    line = run_line(result.stderr)
    assigned = dict(word.split("=", 1) for word in line.split() if "=" in word)
    assert tuple(assigned) == PORT_VARIABLES
    assert all(port_is_free(int(port)) for port in assigned.values())
    assert "cannot listen" not in result.stderr  # nothing was started
    assert http("GET", f"{server.url}/_local/health")[0] == 200  # the first one is untouched


def test_a_busy_port_is_named_with_its_variable_and_every_port_variable_is_given() -> None:
    from local.run import port_conflicts, read_settings

    ports = free_ports(5)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports[4]))
        taken.listen()
        message = port_conflicts(read_settings(dict(zip(PORT_VARIABLES, map(str, ports), strict=True))))
    assert message is not None
    assert f"port(s) in use: 127.0.0.1:{ports[4]} (MOTO_PORT)" in message
    assert "another" not in message  # one busy port of five, not answering as this service: something else
    assert tuple(word.split("=", 1)[0] for word in run_line(message).split() if "=" in word) == PORT_VARIABLES


def test_every_port_free_is_no_conflict() -> None:
    from local.run import port_conflicts, read_settings

    assert port_conflicts(read_settings(dict(zip(PORT_VARIABLES, map(str, free_ports(5)), strict=True)))) is None


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


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE12", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value"},
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
        ),
        ({"AWS_PROFILE": "prod-admin"}, "AWS_PROFILE"),
        ({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}, None),
        ({}, None),
    ],
)
def test_real_aws_credentials_are_warned_about_by_name_never_by_value(env: dict[str, str], named: str | None) -> None:
    from local.run import real_credentials_warning

    warning = real_credentials_warning(env)
    if named is None:
        assert warning is None
    else:
        assert warning is not None
        assert f"({named})" in warning
        assert not any(value in warning for value in env.values())


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

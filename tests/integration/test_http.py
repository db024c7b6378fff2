"""The HTTP layer against a loopback server: retries, timeouts, resets, size caps and TLS verification."""

import datetime as dt
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from local.sandboxes.base import Fault, Reply, Sandbox
from sms_status.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from sms_status.http import Deadline, HttpClient, HttpSettings, deadline_scope, pool_manager

FAST = HttpSettings(connect_timeout=1, read_timeout=0.5, retries=2, backoff_factor=0.01)


class EchoSandbox(Sandbox):
    name = "echo"
    status = 200
    body = b'{"ok": true}'

    def handle(self, request):
        return Reply(self.status, self.body, "application/json")


@pytest.fixture
def echo():
    with EchoSandbox(hang=5) as sandbox:
        yield sandbox


@pytest.fixture
def client():
    return HttpClient("echo", FAST)


def test_a_transient_5xx_is_retried(echo, client):
    echo.inject(Fault.SERVER_ERROR, times=2)
    assert client.send("GET", echo.base_url + "/x").json() == {"ok": True}
    assert len(echo.requests) == 3


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.UNAVAILABLE, Fault.RATE_LIMIT])
def test_a_lasting_5xx_or_429_is_unavailable_after_bounded_retries(echo, client, fault):
    echo.inject(fault, times=None)
    with pytest.raises(ProviderUnavailable) as caught:
        client.send("GET", echo.base_url + "/x")
    assert len(echo.requests) == 1 + FAST.retries
    assert caught.value.details["http_status"] in (429, 500, 503)


def test_other_4xx_are_returned_not_retried(echo, client):
    echo.status = 400
    response = client.send("POST", echo.base_url + "/x", body=b"{}")
    assert response.status == 400
    assert len(echo.requests) == 1


def test_a_read_timeout_is_not_retried(echo, client):
    echo.inject(Fault.TIMEOUT, times=None)
    with pytest.raises(ProviderTimeout):
        client.send("GET", echo.base_url + "/x")
    assert len(echo.requests) == 1


def test_a_trickling_body_cannot_hold_a_call_past_the_read_timeout(echo, client):
    # Each byte comes 0.1 s after the last, well within the 0.5 s socket read timeout: without the overall
    # bound the call would succeed after ~23 s. It must end as a ProviderTimeout instead.
    echo.inject(Fault.TRICKLE, times=None)
    with pytest.raises(ProviderTimeout, match="did not finish its answer"):
        client.send("GET", echo.base_url + "/x")


def test_a_reset_is_retried_then_unavailable(echo, client):
    echo.inject(Fault.RESET, times=None)
    with pytest.raises(ProviderUnavailable):
        client.send("GET", echo.base_url + "/x")
    assert len(echo.requests) == 1 + FAST.retries


def test_connection_refused_is_unavailable(client):
    with EchoSandbox() as gone:
        url = gone.base_url
    with pytest.raises(ProviderUnavailable):
        client.send("GET", url + "/x")


def test_an_oversized_body_is_refused(echo):
    echo.body = b"x" * 2048
    with pytest.raises(ProviderError, match="over 1024 bytes"):
        HttpClient("echo", HttpSettings(max_body_bytes=1024)).send("GET", echo.base_url + "/x")


def test_the_shared_pool_verifies_tls_1_2_and_up():
    settings = pool_manager().connection_pool_kw
    assert settings["cert_reqs"] == "CERT_REQUIRED"
    assert settings["ssl_minimum_version"] is ssl.TLSVersion.TLSv1_2


def self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_file, key_file


def test_an_untrusted_certificate_is_refused(tmp_path, client):
    class Ok(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Ok)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed(tmp_path))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(ProviderUnavailable, match="SSLError"):
            client.send("GET", f"https://127.0.0.1:{server.server_address[1]}/x")
    finally:
        server.shutdown()
        server.server_close()


# ---- the deadline ---------------------------------------------------------------------------------
SLOW_READS = HttpSettings(connect_timeout=1, read_timeout=5, retries=2, backoff_factor=0.01)
SLACK = 0.5


class RetryAfterSandbox(EchoSandbox):
    """429 with a Retry-After of `wait` seconds, `times` times, then 200."""

    wait = "1"
    times = 1

    def handle(self, request):
        if len(self.requests) <= self.times:
            return Reply(429, b"slow down", "text/plain", headers=(("Retry-After", self.wait),))
        return super().handle(request)


def test_a_deadline_given_to_send_cuts_a_read_timeout_longer_than_it(echo):
    echo.inject(Fault.TIMEOUT, times=None)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        HttpClient("echo", SLOW_READS).send("GET", echo.base_url + "/x", deadline=Deadline(0.6))
    assert time.monotonic() - started <= 0.6 + SLACK


def test_the_deadline_in_scope_bounds_every_retry_together(echo):
    echo.inject(Fault.TRICKLE, times=None)  # each attempt would take its whole connect + read timeout
    started = time.monotonic()
    with deadline_scope(Deadline(0.8)), pytest.raises(ProviderTimeout):
        HttpClient("echo", SLOW_READS).send("GET", echo.base_url + "/x")
    assert time.monotonic() - started <= 0.8 + SLACK


def test_headers_dripping_past_the_deadline_are_cut(echo):
    echo.inject(Fault.SLOW_HEADERS, times=None)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        HttpClient("echo", SLOW_READS).send("GET", echo.base_url + "/x", deadline=Deadline(0.6))
    assert time.monotonic() - started <= 0.6 + SLACK


def test_a_5xx_with_an_endless_body_is_never_drained(echo):
    echo.inject(Fault.HUGE_ERROR, times=None)  # 1 GiB declared, sent 64 KiB every 10 ms
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        HttpClient("echo", SLOW_READS).send("GET", echo.base_url + "/x", deadline=Deadline(10))
    assert time.monotonic() - started < 1.5
    assert len(echo.requests) == 1 + SLOW_READS.retries


def test_cancelling_the_deadline_ends_a_request_in_flight(echo):
    echo.inject(Fault.TIMEOUT, times=None)
    deadline = Deadline(10)
    outcome = []

    def send():
        try:
            HttpClient("echo", SLOW_READS).send("GET", echo.base_url + "/x", deadline=deadline)
        except ProviderTimeout as error:
            outcome.append(error)

    thread = threading.Thread(target=send)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    deadline.cancel()
    thread.join(2)
    assert not thread.is_alive()
    assert time.monotonic() - started < 0.5
    assert len(outcome) == 1


def test_retry_after_is_honoured_when_it_fits_the_deadline():
    with RetryAfterSandbox() as sandbox:
        started = time.monotonic()
        response = HttpClient("echo", SLOW_READS).send("GET", sandbox.base_url + "/x", deadline=Deadline(3))
        assert response.status == 200
        assert time.monotonic() - started >= 1.0  # the provider asked for one second
        assert len(sandbox.requests) == 2


def test_a_retry_after_beyond_the_deadline_fails_now_rather_than_wait():
    with RetryAfterSandbox() as sandbox:
        sandbox.wait = "30"
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable) as caught:
            HttpClient("echo", SLOW_READS).send("GET", sandbox.base_url + "/x", deadline=Deadline(3))
        assert time.monotonic() - started < 0.5
        assert caught.value.details["http_status"] == 429
        assert len(sandbox.requests) == 1


def test_retry_pauses_are_jittered_and_capped():
    client = HttpClient("echo", HttpSettings(backoff_factor=0.2, backoff_max=0.3))
    pauses = {client._pause(attempt, None) for attempt in (1, 2, 3) for _ in range(30)}
    assert len(pauses) > 80  # full jitter: no two callers retry in step
    assert all(0 <= pause <= 0.3 for pause in pauses)
    assert client._pause(1, 2.0) == 2.0  # never sooner than the provider asked


def test_without_a_deadline_a_call_is_bounded_by_its_own_budget():
    settings = HttpSettings(connect_timeout=1, read_timeout=2, retries=2, backoff_factor=0.5, backoff_max=0.75)
    assert settings.budget() == 3 * (1 + 2) + 0.5 + 0.75


def test_a_host_name_is_resolved_and_connected_through_the_bounded_resolver(echo, client):
    assert client.send("GET", f"http://localhost:{echo.port}/x").json() == {"ok": True}


def test_a_host_name_that_does_not_resolve_is_unavailable(client, monkeypatch):
    import socket

    def no_such_host(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    with pytest.raises(ProviderUnavailable, match="cannot reach"):
        client.send("GET", "http://provider.invalid:8080/x", deadline=Deadline(1))

"""The HTTP layer against a loopback server: retries, timeouts, resets, size caps and TLS verification."""

import datetime as dt
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from local.sandboxes.base import Fault, Reply, Sandbox
from sms_status.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from sms_status.http import Deadline, HttpClient, HttpSettings, deadline_scope, pool_manager
from tests.certificates import certificate, write_pem
from tests.conftest import eventually

FAST = HttpSettings(connect_timeout=1, read_timeout=0.5, retries=2, backoff_factor=0.01)


class EchoSandbox(Sandbox):
    name = "echo"
    status = 200
    body = b'{"ok": true}'

    def handle(self, request):
        return Reply(self.status, self.body, "application/json")


@pytest.fixture(autouse=True)
def own_resolver(monkeypatch):
    """Each test resolves host names on a resolver pool of its own. mutmut runs every mutant in a process forked
    from one that ran the tests: a pool built before the fork has no live threads after it, so lookups queued
    there would never run."""
    from sms_status import http

    monkeypatch.setattr(http, "_resolver", None)
    yield
    if http._resolver is not None:
        http._resolver.shutdown(wait=False, cancel_futures=True)


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


@pytest.fixture
def fresh_pool(monkeypatch):
    """The shared pool as a cold start builds it (the process's one may exist already)."""
    from sms_status import http

    monkeypatch.setattr(http, "_pool", None)
    return pool_manager()


def test_the_shared_pool_verifies_tls_1_2_and_up(fresh_pool):
    assert pool_manager() is fresh_pool  # built once, then shared by every client
    settings = fresh_pool.connection_pool_kw
    assert settings["cert_reqs"] == "CERT_REQUIRED"
    assert settings["ssl_minimum_version"] is ssl.TLSVersion.TLSv1_2


def test_the_shared_pools_connections_are_cut_at_the_deadline(fresh_pool, echo):
    echo.inject(Fault.SLOW_HEADERS, times=None)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        HttpClient("echo", SLOW_READS).send("GET", echo.base_url + "/x", deadline=Deadline(0.6))
    assert time.monotonic() - started <= 0.6 + SLACK


def test_the_shared_pool_keeps_a_connection_for_each_request_of_a_fan_out(fresh_pool, raw):
    together = threading.Barrier(10, timeout=5)

    def answer(head):
        together.wait()  # ten requests in flight at once
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"

    server = raw(answer)
    client = HttpClient("echo", FAST)
    for _ in range(2):
        threads = [threading.Thread(target=client.send, args=("GET", server.url + "/x")) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
    assert server.connections == 10  # the second round reused every connection of the first


def self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    return write_pem(certificate(name, name, key, key), key, tmp_path / "cert.pem", tmp_path / "key.pem")


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
        with pytest.raises(ProviderUnavailable, match="SSLError") as caught:
            client.send("GET", f"https://127.0.0.1:{server.server_address[1]}/x")
        assert caught.value.details == {"provider": "echo"}
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


# ---- what each attempt is sent with, and when another one is made ------------------------------------
class Recording:
    """The shared pool, remembering the arguments of every attempt (one urllib3 request each)."""

    def __init__(self):
        self.calls = []

    def request(self, method, url, **kwargs):
        self.calls.append(kwargs)
        return pool_manager().request(method, url, **kwargs)


class Scripted(Deadline):
    """A deadline that always has `left` seconds left and pauses without sleeping, remembering each pause.
    `sleeps=False`: every pause is cut (as when the lookup's round is cancelled meanwhile)."""

    def __init__(self, left, sleeps=True):
        super().__init__(left)
        self.left = left
        self.sleeps = sleeps
        self.pauses = []

    def remaining(self):
        return self.left

    def sleep(self, seconds):
        self.pauses.append(seconds)
        return self.sleeps


@pytest.fixture
def no_jitter(monkeypatch):
    """Every backoff pause at the top of its jitter range, so pauses can be compared."""
    from sms_status import http

    monkeypatch.setattr(http, "random", type("Top", (), {"uniform": staticmethod(lambda low, high: high)}))


def test_each_attempt_is_sent_with_the_connect_and_read_timeouts(echo):
    pool = Recording()
    HttpClient("echo", FAST, pool=pool).send("GET", echo.base_url + "/x", deadline=Deadline(30))
    (call,) = pool.calls
    assert (call["timeout"].connect_timeout, call["timeout"].read_timeout) == (1, 0.5)


def test_a_deadline_shorter_than_the_timeouts_cuts_both(echo):
    pool = Recording()
    HttpClient("echo", FAST, pool=pool).send("GET", echo.base_url + "/x", deadline=Deadline(0.3))
    timeout = pool.calls[0]["timeout"]
    assert 0.2 < timeout.connect_timeout <= 0.3
    assert 0.2 < timeout.read_timeout <= 0.3


def test_a_provider_that_never_answers_ends_at_the_read_timeout(echo, client):
    echo.inject(Fault.TIMEOUT, times=None)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout) as caught:
        client.send("GET", echo.base_url + "/x")
    assert caught.value.message == "echo did not answer within 0.5s"  # the read timeout, not the attempt's 1.5 s
    assert time.monotonic() - started < 1.4
    assert len(echo.requests) == 1


def test_a_body_still_dripping_at_the_attempts_end_is_a_timeout_after_connect_plus_read(echo, client):
    echo.inject(Fault.TRICKLE, times=None)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout) as caught:
        client.send("GET", echo.base_url + "/x")
    assert caught.value.message == "echo did not finish its answer within 1.5s"
    assert 1.4 <= time.monotonic() - started < 2.5
    assert len(echo.requests) == 1  # a timeout is not retried


@pytest.mark.parametrize("deadline", [Deadline(0.01), Deadline(30)], ids=["too-short", "cancelled"])
def test_no_request_is_opened_without_time_for_it(echo, client, deadline):
    if deadline.seconds == 30:
        deadline.cancel()
    with pytest.raises(ProviderTimeout) as caught:
        client.send("GET", echo.base_url + "/x", deadline=deadline)
    assert caught.value.message == f"echo did not answer within the {deadline.seconds:g}s deadline"
    assert echo.requests == []


def test_an_attempt_is_made_with_just_enough_left(echo, client):
    from sms_status.http import MIN_ATTEMPT_SECONDS

    assert client.send("GET", echo.base_url + "/x", deadline=Scripted(MIN_ATTEMPT_SECONDS)).status == 200


@pytest.mark.parametrize(("after_pause", "retried"), [(0.01, False), (0.5, True)])
def test_a_retry_is_made_only_when_an_attempt_still_fits_after_the_pause(after_pause, retried):
    with RetryAfterSandbox() as sandbox:  # 429, Retry-After: 1, then 200
        deadline = Scripted(1 + after_pause)
        client = HttpClient("echo", SLOW_READS)
        if retried:
            assert client.send("GET", sandbox.base_url + "/x", deadline=deadline).status == 200
            assert deadline.pauses == [1.0]
        else:
            with pytest.raises(ProviderUnavailable) as caught:
                client.send("GET", sandbox.base_url + "/x", deadline=deadline)
            assert caught.value.details["http_status"] == 429
            assert deadline.pauses == []
        assert len(sandbox.requests) == 1 + retried


def test_a_pause_and_an_attempt_that_exactly_fit_are_made():
    from sms_status.http import MIN_ATTEMPT_SECONDS

    with RetryAfterSandbox() as sandbox:
        deadline = Scripted(1 + MIN_ATTEMPT_SECONDS)
        assert HttpClient("echo", SLOW_READS).send("GET", sandbox.base_url + "/x", deadline=deadline).status == 200
        assert deadline.pauses == [1.0]


def test_a_pause_cut_short_ends_the_call_with_the_last_failure(echo, client):
    echo.inject(Fault.UNAVAILABLE, times=None)
    deadline = Scripted(30, sleeps=False)
    with pytest.raises(ProviderUnavailable) as caught:
        client.send("GET", echo.base_url + "/x", deadline=deadline)
    assert caught.value.message == "echo answered HTTP 503"
    assert caught.value.details["http_status"] == 503
    assert len(deadline.pauses) == 1
    assert len(echo.requests) == 1


def test_pauses_double_up_to_the_cap(echo, no_jitter):
    echo.inject(Fault.SERVER_ERROR, times=None)
    deadline = Scripted(30)
    settings = HttpSettings(connect_timeout=1, read_timeout=1, retries=3, backoff_factor=0.01, backoff_max=0.03)
    with pytest.raises(ProviderUnavailable):
        HttpClient("echo", settings).send("GET", echo.base_url + "/x", deadline=deadline)
    assert deadline.pauses == pytest.approx([0.01, 0.02, 0.03])
    assert len(echo.requests) == 4


def http_date(seconds_from_now):
    from email.utils import format_datetime

    return format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds_from_now), usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        ("2", 2.0, 2.0),
        (" 3 ", 3.0, 3.0),
        (3600, 3500.0, 3600.0),  # an HTTP date an hour from now: the seconds until then
        (-30, 0.001, 0.001),  # an HTTP date already past: the backoff alone
        ("Wed, 02 Dec 2026 17:00:00 -0000", 0.001, 0.001),  # no time zone: unreadable, the backoff alone
        ("soon", 0.001, 0.001),
        ("", 0.001, 0.001),
    ],
)
def test_retry_after_sets_the_pause_when_readable(no_jitter, retry_after, low, high):
    with RetryAfterSandbox() as sandbox:
        sandbox.wait = http_date(retry_after) if isinstance(retry_after, int) else retry_after
        deadline = Scripted(7200)
        settings = HttpSettings(connect_timeout=1, read_timeout=1, retries=1, backoff_factor=0.001)
        assert HttpClient("echo", settings).send("GET", sandbox.base_url + "/x", deadline=deadline).status == 200
        (pause,) = deadline.pauses
        assert low <= pause <= high


class RedirectSandbox(EchoSandbox):
    def handle(self, request):
        if request.path == "/moved":
            return Reply(302, b"", "text/plain", headers=(("Location", "/x"),))
        return super().handle(request)


def test_a_redirect_is_returned_not_followed(client):
    with RedirectSandbox() as sandbox:
        response = client.send("GET", sandbox.base_url + "/moved")
        assert (response.status, response.headers["location"]) == (302, "/x")
        assert [r.path for r in sandbox.requests] == ["/moved"]


def test_response_headers_are_read_by_lower_case_name(echo, client):
    assert client.send("GET", echo.base_url + "/x").headers["content-type"] == "application/json"


def test_a_body_of_exactly_the_cap_is_read(echo):
    echo.body = b"x" * 1024
    assert HttpClient("echo", HttpSettings(max_body_bytes=1024)).send("GET", echo.base_url + "/x").body == echo.body


def test_a_body_over_the_cap_is_refused_with_its_status(echo):
    echo.body = b"x" * 1025
    with pytest.raises(ProviderError) as caught:
        HttpClient("echo", HttpSettings(max_body_bytes=1024)).send("GET", echo.base_url + "/x")
    assert caught.value.message == "echo answered with a body over 1024 bytes"
    assert caught.value.details["http_status"] == 200


class RawServer:
    """A loopback server answering every request on a connection with `answer(head) -> bytes | None` (None:
    hang until stopped); counts connections."""

    def __init__(self, answer):
        import socket

        self.answer = answer
        self.connections = 0
        self.closed = 0  # connections the client closed
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            buffer = b""
            while not self.stopping.is_set():
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self.closed += 1
                    return
                buffer += data
                while b"\r\n\r\n" in buffer:
                    head, buffer = buffer.split(b"\r\n\r\n", 1)
                    reply = self.answer(head)
                    if reply is None:
                        self.stopping.wait(30)
                        return
                    conn.sendall(reply)
                    if b"Connection: close" in reply:
                        return

    def close(self):
        self.stopping.set()
        self.threads[0].join(2)
        self.listener.close()


@pytest.fixture
def raw():
    servers = []

    def start(answer):
        servers.append(RawServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize(("size", "refused"), [(1024, False), (1025, True)])
def test_a_body_without_a_length_is_capped_as_it_is_read(raw, size, refused):
    server = raw(lambda head: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"y" * size)
    client = HttpClient("echo", HttpSettings(max_body_bytes=1024))
    if refused:
        with pytest.raises(ProviderError, match="over 1024 bytes"):
            client.send("GET", server.url + "/x")
    else:
        assert client.send("GET", server.url + "/x").body == b"y" * size


def test_a_declared_length_over_the_cap_is_refused_before_any_body_comes(raw):
    server = raw(lambda head: b"HTTP/1.1 200 OK\r\nContent-Length: 2048\r\n\r\n")  # ...and then nothing
    started = time.monotonic()
    with pytest.raises(ProviderError, match="over 1024 bytes"):
        HttpClient("echo", HttpSettings(read_timeout=5, max_body_bytes=1024)).send("GET", server.url + "/x", deadline=Deadline(10))
    assert time.monotonic() - started < 1


def test_calls_reuse_the_shared_pools_connection(raw):
    server = raw(lambda head: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    client = HttpClient("echo", FAST)
    for _ in range(3):
        assert client.send("GET", server.url + "/x").json() == {}
    assert server.connections == 1


def test_a_reused_connection_is_cut_at_the_deadline_too(echo):
    client = HttpClient("echo", SLOW_READS)
    assert client.send("GET", echo.base_url + "/x").status == 200  # the connection goes back to the pool
    echo.inject(Fault.SLOW_HEADERS, times=None)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        client.send("GET", echo.base_url + "/x", deadline=Deadline(0.6))
    assert time.monotonic() - started <= 0.6 + SLACK


def test_a_connect_timeout_is_retried(full_backlog):
    pool = Recording()
    settings = HttpSettings(connect_timeout=0.2, read_timeout=0.5, retries=2, backoff_factor=0.01)
    with pytest.raises(ProviderTimeout) as caught:
        HttpClient("echo", settings, pool=pool).send("GET", f"http://127.0.0.1:{full_backlog}/x", deadline=Deadline(5))
    assert caught.value.message == "echo did not answer in time (ConnectTimeoutError)"
    assert caught.value.details == {"provider": "echo"}
    assert len(pool.calls) == 3


def test_a_refused_connection_is_retried_then_unavailable():
    with EchoSandbox() as gone:
        url = gone.base_url
    pool = Recording()
    with pytest.raises(ProviderUnavailable) as caught:
        HttpClient("echo", FAST, pool=pool).send("GET", url + "/x")
    assert caught.value.message == "cannot reach echo (NewConnectionError)"
    assert caught.value.details == {"provider": "echo"}
    assert len(pool.calls) == 3


def test_a_reset_is_a_broken_connection(echo, client):
    echo.inject(Fault.RESET, times=None)
    with pytest.raises(ProviderUnavailable) as caught:
        client.send("GET", echo.base_url + "/x")
    assert caught.value.message == "connection to echo was broken"
    assert caught.value.details == {"provider": "echo"}


def test_a_json_body_nested_past_the_interpreters_stack_is_not_json():
    from sms_status.http import HttpResponse

    with pytest.raises(ValueError, match=r"^JSON nested too deeply$"):
        HttpResponse(200, {}, b"[" * 100_000 + b"]" * 100_000).json()


# ---- DNS -------------------------------------------------------------------------------------------
@pytest.fixture
def hung_dns(monkeypatch):
    """getaddrinfo hangs (until teardown) for every name; counts the lookups that started. A resolver pool of
    this test's own, so hung lookups of other tests do not queue in front."""
    import socket

    from sms_status import http

    release = threading.Event()
    started = []

    def getaddrinfo(host, *args, **kwargs):
        started.append(host)
        release.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "released")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(http, "_resolver", None)
    yield started
    release.set()
    if http._resolver is not None:
        http._resolver.shutdown(wait=True)


def test_a_hung_dns_lookup_ends_at_the_connect_timeout(hung_dns):
    settings = HttpSettings(connect_timeout=0.2, read_timeout=2, retries=0)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout) as caught:
        HttpClient("echo", settings).send("GET", "http://provider.test:8080/x", deadline=Deadline(10))
    assert caught.value.message == "echo did not answer in time (ConnectTimeoutError)"
    assert time.monotonic() - started < 1


def test_hung_dns_lookups_hold_at_most_two_threads(hung_dns):
    settings = HttpSettings(connect_timeout=0.1, read_timeout=1, retries=0)
    for n in range(4):
        with pytest.raises(ProviderTimeout):
            HttpClient("echo", settings).send("GET", f"http://provider{n}.test:8080/x", deadline=Deadline(5))
    assert hung_dns == ["provider0.test", "provider1.test"]  # the others waited for a free resolver, then gave up


def test_the_first_address_that_connects_is_used(echo, monkeypatch):
    import socket

    real = socket.getaddrinfo

    def two_addresses(host, port, *args, **kwargs):
        if host != "provider.test":
            return real(host, port, *args, **kwargs)  # urllib3 resolves the address it is given, without DNS
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),  # nothing listens there
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
    response = HttpClient("echo", FAST).send("GET", f"http://provider.test:{echo.port}/x", deadline=Deadline(5))
    assert response.json() == {"ok": True}
    assert echo.requests[0].headers["host"] == f"provider.test:{echo.port}"  # the name, not the address


def test_every_error_names_its_provider(echo, client):
    errors = []
    for fault in (Fault.UNAVAILABLE, Fault.TIMEOUT):
        echo.inject(fault, times=None)
        with pytest.raises((ProviderUnavailable, ProviderTimeout)) as caught:
            client.send("GET", echo.base_url + "/x", deadline=Scripted(30, sleeps=False))
        errors.append(caught.value)
        echo.clear_faults()
    with pytest.raises(ProviderTimeout) as caught:
        client.send("GET", echo.base_url + "/x", deadline=Deadline(0.01))
    errors.append(caught.value)
    echo.body = b"x" * 2048
    with pytest.raises(ProviderError) as caught:
        HttpClient("echo", HttpSettings(max_body_bytes=1024)).send("GET", echo.base_url + "/x")
    errors.append(caught.value)
    assert [error.details["provider"] for error in errors] == ["echo"] * 4


def test_a_body_cut_by_the_deadline_is_not_the_answer(raw):
    # No length: the end of the body is the end of the connection, so the cut looks like an ending.
    server = raw(lambda head: b"HTTP/1.1 200 OK\r\n\r\n" + b'{"ids": [')  # ...and the rest never comes
    with pytest.raises(ProviderTimeout) as caught:
        HttpClient("echo", SLOW_READS).send("GET", server.url + "/x", deadline=Deadline(0.5))
    assert caught.value.message.startswith("echo did not finish its answer within 0.")
    assert caught.value.details["provider"] == "echo"


@pytest.mark.parametrize(("size", "refused"), [(200_000, False), (200_001, True)])
def test_a_body_in_many_chunks_is_read_whole_and_capped_whole(raw, size, refused):
    body = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    server = raw(lambda head: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
    client = HttpClient("echo", HttpSettings(max_body_bytes=200_000))
    if refused:
        with pytest.raises(ProviderError, match="over 200000 bytes"):
            client.send("GET", server.url + "/x")
    else:
        assert client.send("GET", server.url + "/x").body == body


@pytest.mark.parametrize(
    ("reply", "settings", "error"),
    [
        (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nbusy!", HttpSettings(retries=0), ProviderUnavailable),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2048\r\n\r\n", HttpSettings(max_body_bytes=1024), ProviderError),
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n" + b"x" * 2048, HttpSettings(max_body_bytes=1024), ProviderError),
    ],
    ids=["5xx", "declared-too-big", "read-too-big"],
)
def test_the_connection_of_an_unwanted_body_is_closed_at_once(raw, reply, settings, error):
    server = raw(lambda head: reply)
    with pytest.raises(error) as caught:  # the error (and its traceback) is still held here...
        HttpClient("echo", settings).send("GET", server.url + "/x", deadline=Deadline(10))
    # ...and yet the connection is gone: never drained, never left open, never back in the pool
    assert eventually(lambda: server.closed == 1, 2), caught.value


def test_the_callers_headers_and_body_are_sent(echo, client):
    client.send("POST", echo.base_url + "/x", headers={"X-Api-Key": "k1"}, body=b'{"ids": ["1"]}')
    (request,) = echo.requests
    assert (request.headers["x-api-key"], request.body) == ("k1", b'{"ids": ["1"]}')


@pytest.fixture
def provider_test(monkeypatch):
    """The name provider.test resolves to 127.0.0.1 (IP literals resolve as usual)."""
    import socket

    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        return real("127.0.0.1" if host == "provider.test" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_connect_to_a_resolved_name_ends_at_the_connect_timeout(provider_test, full_backlog):
    settings = HttpSettings(connect_timeout=0.2, read_timeout=2, retries=0)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout, match="ConnectTimeoutError"):
        HttpClient("echo", settings).send("GET", f"http://provider.test:{full_backlog}/x", deadline=Deadline(10))
    assert time.monotonic() - started < 1  # not the attempt's 2.2 s


def test_a_resolved_name_that_refuses_is_unavailable(provider_test):
    with EchoSandbox() as gone:
        port = gone.port
    with pytest.raises(ProviderUnavailable) as caught:
        HttpClient("echo", FAST).send("GET", f"http://provider.test:{port}/x", deadline=Deadline(0.8))
    assert caught.value.message == "cannot reach echo (NewConnectionError)"


def test_a_connection_to_a_resolved_name_reconnects_after_the_provider_closed_it(provider_test, raw):
    server = raw(lambda head: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    client = HttpClient("echo", FAST)
    for _ in range(2):  # the second request reopens the pooled connection (with less than a second left)
        assert client.send("GET", server.url.replace("127.0.0.1", "provider.test") + "/x", deadline=Deadline(0.8)).json() == {}
    assert server.connections == 2


@pytest.fixture
def scripted_dns(monkeypatch):
    """`answer(addresses, after=seconds)`: provider.test resolves to those IPv4 addresses, that many seconds after
    the lookup starts (IP literals resolve as usual)."""
    import socket

    from sms_status import http

    real = socket.getaddrinfo
    script = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "provider.test":
            return real(host, port, *args, **kwargs)
        time.sleep(script["after"])
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in script["addresses"]]

    def answer(addresses, after=0.0):
        script.update(addresses=addresses, after=after)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield answer
    if http._resolver is not None:
        http._resolver.shutdown(wait=True)  # the last scripted lookup has ended


def test_a_connect_after_a_slow_dns_answer_gets_only_what_is_left(scripted_dns, full_backlog):
    scripted_dns(["127.0.0.1"], after=0.9)  # most of the attempt's 1.2 s, then a connect that hangs
    settings = HttpSettings(connect_timeout=3, read_timeout=3, retries=0)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        HttpClient("echo", settings).send("GET", f"http://provider.test:{full_backlog}/x", deadline=Deadline(1.2))
    assert time.monotonic() - started <= 1.2 + SLACK  # the connect was cut to about 0.3 s, not given 1.2 s again


def test_addresses_left_untried_when_the_attempt_ends_leave_the_last_failure(scripted_dns, full_backlog):
    # The first address hangs for all of the attempt; the second is then not tried: the attempt's timeout stands.
    scripted_dns(["127.0.0.1", "127.0.0.2"])
    settings = HttpSettings(connect_timeout=3, read_timeout=3, retries=0)
    with pytest.raises(ProviderTimeout) as caught:
        HttpClient("echo", settings).send("GET", f"http://provider.test:{full_backlog}/x", deadline=Deadline(0.5))
    assert caught.value.details["provider"] == "echo"


def test_an_ip_address_is_connected_to_while_every_resolver_thread_is_busy(scripted_dns, echo):
    # Two lookups of a slow name hold both resolver threads for 1.5 s; an address needs no lookup, so no wait.
    scripted_dns(["127.0.0.1"], after=1.5)
    errors = []

    def look_up_the_slow_name():
        try:
            HttpClient("echo", FAST).send("GET", f"http://provider.test:{echo.port}/x", deadline=Deadline(0.2))
        except ProviderTimeout as exc:
            errors.append(exc)

    slow = [threading.Thread(target=look_up_the_slow_name) for _ in range(2)]
    for thread in slow:
        thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    settings = HttpSettings(connect_timeout=1, read_timeout=1, retries=0)
    assert HttpClient("echo", settings).send("GET", echo.base_url + "/x", deadline=Deadline(5)).json() == {"ok": True}
    assert time.monotonic() - started < 0.5  # not queued behind the two lookups
    for thread in slow:
        thread.join(5)
    assert len(errors) == 2  # the lookups themselves gave up at their deadline

"""Reading a secret through the Parameters and Secrets extension's endpoint (sms_status.credentials), against the
local extension on 127.0.0.1 (served from moto) and against scripted servers for the failures it cannot show."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from moto import mock_aws

from local.secrets_extension import SecretsExtension
from sms_status import credentials
from sms_status.credentials import EXTENSION_PORT_VARIABLE, READ_BUDGET, SecretSource, clear_caches
from sms_status.errors import CredentialsError

TOKEN = "session-token"
VALUE = {"api_key": "the-value-1"}


def as_dict(value, name):
    return value


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.setattr(credentials, "_pool", None)
    clear_caches()
    yield
    clear_caches()


@pytest.fixture
def extension(monkeypatch):
    with mock_aws(), SecretsExtension(token=TOKEN) as served:
        boto3.client("secretsmanager").create_secret(Name="app/key", SecretString=json.dumps(VALUE))
        monkeypatch.setenv(EXTENSION_PORT_VARIABLE, str(served.port))
        yield served


def test_a_secret_is_read_once_then_served_from_the_cache_until_refreshed(extension):
    source = SecretSource("app/key", 60, as_dict)
    assert source.get() == VALUE
    assert source.get() == VALUE
    assert extension.requests == 1
    extension.client().put_secret_value(SecretId="app/key", SecretString=json.dumps({"api_key": "rotated"}))
    assert source.get() == VALUE  # still fresh: the cache answers
    assert source.get(refresh=True) == {"api_key": "rotated"}  # a refused secret is read again, for real
    assert extension.requests == 2
    assert source.get() == {"api_key": "rotated"}


def test_a_secret_older_than_its_max_age_is_read_again(extension, monkeypatch):
    source = SecretSource("app/key", 60, as_dict)
    source.get()
    now = time.monotonic()
    monkeypatch.setattr(credentials.SECRETS, "clock", lambda: now + 59)
    source.get()
    assert extension.requests == 1
    monkeypatch.setattr(credentials.SECRETS, "clock", lambda: now + 61)
    source.get()
    assert extension.requests == 2


def test_a_missing_secret_is_a_credentials_error_naming_it(extension):
    with pytest.raises(CredentialsError) as caught:
        SecretSource("app/missing", 60, as_dict).get()
    assert caught.value.message == "secret app/missing cannot be read"
    assert caught.value.details == {"secret": "app/missing", "http_status": 400}


def test_a_refused_token_is_a_credentials_error(extension, monkeypatch):
    monkeypatch.setenv("AWS_SESSION_TOKEN", "another-role")
    with pytest.raises(CredentialsError) as caught:
        SecretSource("app/key", 60, as_dict).get()
    assert caught.value.details == {"secret": "app/key", "http_status": 401}
    assert extension.requests == 0  # refused before Secrets Manager is asked


def test_the_extension_refuses_what_is_not_a_secret_request(extension):
    assert extension.answer("/secretsmanager/get?secretId=app/key", {credentials.TOKEN_HEADER: TOKEN})[0] == 200
    assert extension.answer("/systemsmanager/parameters/get?name=x", {credentials.TOKEN_HEADER: TOKEN})[0] == 404
    assert extension.answer("/secretsmanager/get", {credentials.TOKEN_HEADER: TOKEN})[0] == 400
    assert (
        extension.answer("/secretsmanager/get?secretId=app/key", {credentials.TOKEN_HEADER: TOKEN, "X-Forwarded-For": "1.2.3.4"})[0] == 400
    )
    assert extension.answer("/secretsmanager/get?secretId=app/key", {})[0] == 401


def test_an_unusable_secret_is_refused_without_its_value_and_not_kept(extension):
    extension.client().put_secret_value(SecretId="app/key", SecretString="the-value-1 is not json")
    source = SecretSource("app/key", 60, as_dict)
    with pytest.raises(CredentialsError) as caught:
        source.get()
    assert "the-value-1" not in str(caught.value) + json.dumps(caught.value.to_body())
    extension.client().put_secret_value(SecretId="app/key", SecretString=json.dumps(VALUE))
    assert source.get() == VALUE  # the bad value was not cached
    assert extension.requests == 2


class Scripted:
    """A fake extension answering the statuses of `script` in turn (then 200 with VALUE); `hang` never answers."""

    def __init__(self, script: list[int | str]) -> None:
        self.script = list(script)
        self.seen = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen += 1
                step = outer.script.pop(0) if outer.script else 200
                if step == "hang":
                    time.sleep(1.0)
                    return
                body = json.dumps({"SecretString": json.dumps(VALUE)} if step == 200 else {"message": "no"}).encode()
                self.send_response(int(step))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted(monkeypatch):
    servers = []

    def start(*script):
        server = Scripted(list(script))
        servers.append(server)
        monkeypatch.setenv(EXTENSION_PORT_VARIABLE, str(server.port))
        return server

    yield start
    for server in servers:
        server.close()


def test_a_failing_extension_is_asked_once_more(scripted):
    server = scripted(503)
    assert SecretSource("app/key", 60, as_dict).get() == VALUE
    assert server.seen == 2


def test_an_extension_failing_twice_is_a_credentials_error(scripted):
    server = scripted(500, 502)
    with pytest.raises(CredentialsError) as caught:
        SecretSource("app/key", 60, as_dict).get()
    assert caught.value.details == {"secret": "app/key", "http_status": 502}
    assert server.seen == 2


def test_a_refusal_is_not_asked_again(scripted):
    server = scripted(400)
    with pytest.raises(CredentialsError):
        SecretSource("app/key", 60, as_dict).get()
    assert server.seen == 1


def test_an_extension_that_never_answers_is_a_credentials_error_within_the_read_budget(scripted, monkeypatch):
    monkeypatch.setattr(credentials, "SECRETS_READ_TIMEOUT", 0.2)
    server = scripted("hang", "hang")
    started = time.monotonic()
    with pytest.raises(CredentialsError) as caught:
        SecretSource("app/key", 60, as_dict).get()
    assert time.monotonic() - started < 2 * (credentials.SECRETS_CONNECT_TIMEOUT + 0.2)
    assert caught.value.details == {"secret": "app/key", "reason": "no answer from the secrets extension"}
    assert server.seen == 2


def test_no_extension_listening_is_a_credentials_error(monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(EXTENSION_PORT_VARIABLE, str(port))
    with pytest.raises(CredentialsError, match="secret app/key cannot be read"):
        SecretSource("app/key", 60, as_dict).get()


@pytest.mark.parametrize("port", ["http", "0", "70000"])
def test_a_bad_extension_port_is_a_credentials_error(monkeypatch, port):
    monkeypatch.setenv(EXTENSION_PORT_VARIABLE, port)
    with pytest.raises(CredentialsError, match=EXTENSION_PORT_VARIABLE):
        SecretSource("app/key", 60, as_dict).get()


def test_the_extension_is_asked_with_short_timeouts_and_no_retries_of_its_own(monkeypatch):
    monkeypatch.delenv(EXTENSION_PORT_VARIABLE, raising=False)
    assert credentials.extension_port() == 2773  # the extension's documented default
    pool = credentials._extension_pool(2773)
    assert (pool.host, pool.port) == ("localhost", 2773)
    assert (pool.timeout.connect_timeout, pool.timeout.read_timeout) == (1.0, 2.0)
    assert pool.retries is False
    assert READ_BUDGET == 2 * (1.0 + 2.0)

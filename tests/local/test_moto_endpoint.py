"""moto's endpoint of the local run (`make run` serves it on 127.0.0.1:8084 for the AWS CLI) answers loopback only.

moto checks no signature, so any request it answers is answered in full: a web page that rebinds its own name to
127.0.0.1 (DNS rebinding) could read the provider secrets with GetSecretValue. Such a request carries the page's
name as its Host, which the endpoint now refuses, as the local API server does.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.stack import LOOPBACK_HOST, LocalAws
from tests.local.harness import free_ports

TEMPLATE = """Resources:
  ProbeSecret:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: probe/credentials
"""
SECRET = {"api_key": "not-for-web-pages"}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    path = tmp_path_factory.mktemp("moto-endpoint") / "template.yaml"
    path.write_text(TEMPLATE)
    saved = dict(os.environ)
    aws = LocalAws({}, {"ProbeSecret": SECRET}, template_path=path).start()
    try:
        (port,) = free_ports(1)
        aws.serve_endpoint(port)
        yield "127.0.0.1", port
    finally:
        aws.stop()
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)


def get_secret_value(address: tuple[str, int], host: str) -> tuple[int, bytes]:
    """GetSecretValue over plain HTTP, as a browser's fetch() would send it: the Host is the page's name."""
    connection = http.client.HTTPConnection(*address, timeout=10)
    try:
        connection.putrequest("POST", "/", skip_host=True)
        body = json.dumps({"SecretId": "probe/credentials"}).encode()
        headers = {
            "Host": host,
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.GetSecretValue",
            # moto needs no valid signature, only the service named in the credential scope.
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, "
            "SignedHeaders=host, Signature=0",
            "Content-Length": str(len(body)),
        }
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:{port}", "127.0.0.1.nip.io", "localhost.attacker.example"])
def test_a_rebinding_page_cannot_read_a_secret(endpoint: tuple[str, int], host: str) -> None:
    status, body = get_secret_value(endpoint, host.format(port=endpoint[1]))
    assert status == 403
    assert b"not-for-web-pages" not in body


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "127.0.0.1", "localhost:{port}", "LOCALHOST", "[::1]:{port}"])
def test_the_aws_cli_addressing_loopback_still_works(endpoint: tuple[str, int], host: str) -> None:
    status, body = get_secret_value(endpoint, host.format(port=endpoint[1]))
    assert status == 200, body
    assert json.loads(json.loads(body)["SecretString"]) == SECRET


def test_loopback_names_are_exactly_these() -> None:
    for host in ("127.0.0.1", "127.0.0.1:8084", "localhost", "localhost:8084", "[::1]", "[::1]:8084", "bucket.localhost:8084"):
        assert LOOPBACK_HOST.fullmatch(host), host
    for host in ("attacker.example", "127.0.0.2", "localhost.example", "127.0.0.1.example", "[::2]", "", "localhost:port"):
        assert not LOOPBACK_HOST.fullmatch(host), host


def test_the_endpoint_is_what_make_run_serves() -> None:
    # local.run serves moto through LocalAws.serve_endpoint, the guarded server.
    source = (Path(__file__).resolve().parents[2] / "local" / "run.py").read_text()
    assert "aws.serve_endpoint(" in source

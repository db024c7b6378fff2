"""The HTTP layer over TLS, against a loopback server the test's own CA vouches for: the deadline cuts a TLS
handshake and a TLS answer as it cuts plain ones (the wrapped socket is not the one that connected).

Verification stays on: the pool is built by `pool_manager()` and only told to trust the test's CA as well."""

import ipaddress
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sms_status.errors import ProviderTimeout
from sms_status.http import Deadline, HttpClient, HttpSettings, pool_manager
from tests.certificates import certificate, write_pem

SLOW_READS = HttpSettings(connect_timeout=3, read_timeout=5, retries=0)
SLACK = 0.5


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A CA, and a certificate it signed for 127.0.0.1 (an IP SAN, as hostname checking requires)."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sms-status test CA")])
    usage = {name: False for name in ("content_commitment", "data_encipherment", "key_agreement", "encipher_only", "decipher_only")}
    ca = certificate(
        ca_name,
        ca_name,
        ca_key,
        ca_key,
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (x509.KeyUsage(digital_signature=False, key_encipherment=False, key_cert_sign=True, crl_sign=True, **usage), True),
    )
    leaf = certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]),
        ca_name,
        key,
        ca_key,
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False, crl_sign=False, **usage), True),
        (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
    )
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return ca_file, *write_pem(leaf, key, folder / "cert.pem", folder / "key.pem")


class TlsServer:
    """A loopback TLS server: after the handshake it reads a request head and answers with `reply`, one byte
    every `drip` seconds. `handshake=False`: it accepts and then says nothing (the handshake never ends)."""

    def __init__(self, cert_file, key_file, reply, drip=0.0, handshake=True):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_file, key_file)
        self.reply, self.drip, self.handshake = reply, drip, handshake
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.url = f"https://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            if not self.handshake:
                self.stopping.wait(30)
                return
            conn.settimeout(5)
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    head = b""
                    while b"\r\n\r\n" not in head:
                        data = tls.recv(65536)
                        if not data:
                            return
                        head += data
                    for byte in self.reply:
                        if self.stopping.wait(self.drip):
                            return
                        tls.sendall(bytes([byte]))
            except OSError:  # the client cut the connection: what these tests expect
                return

    def close(self):
        self.stopping.set()
        self.thread.join(2)
        self.listener.close()


@pytest.fixture
def tls_server(tls_files):
    servers = []
    _, cert_file, key_file = tls_files

    def start(reply, **kwargs):
        servers.append(TlsServer(cert_file, key_file, reply, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def trusting_pool(monkeypatch, tls_files):
    """The shared pool as a cold start builds it, trusting the test's CA (verification itself unchanged)."""
    from sms_status import http

    monkeypatch.setattr(http, "_pool", None)
    pool = pool_manager()
    pool.connection_pool_kw["ca_certs"] = str(tls_files[0])
    return pool


@pytest.fixture
def own_resolver(monkeypatch):
    """A resolver pool of the test's own (see test_http.py: one built before mutmut's fork has no threads after it)."""
    from sms_status import http

    monkeypatch.setattr(http, "_resolver", None)
    yield
    if http._resolver is not None:
        http._resolver.shutdown(wait=False, cancel_futures=True)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


def test_a_trusted_tls_server_is_read(trusting_pool, tls_server):
    server = tls_server(OK)
    assert HttpClient("echo", SLOW_READS).send("GET", server.url + "/x", deadline=Deadline(5)).json() == {}


def test_tls_stays_verified_against_the_host_name(trusting_pool, tls_server, own_resolver):
    from sms_status.errors import ProviderUnavailable

    server = tls_server(OK)
    with pytest.raises(ProviderUnavailable, match="SSLError"):  # the certificate names 127.0.0.1, not localhost
        HttpClient("echo", SLOW_READS).send("GET", server.url.replace("127.0.0.1", "localhost") + "/x", deadline=Deadline(5))


def test_tls_headers_dripping_past_the_deadline_are_cut(trusting_pool, tls_server):
    # Each byte comes well within the read timeout, so only the deadline's watchdog can end this answer.
    server = tls_server(OK, drip=0.1)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout) as caught:
        HttpClient("echo", SLOW_READS).send("GET", server.url + "/x", deadline=Deadline(0.6))
    assert caught.value.message.startswith("echo did not finish its answer within 0.")
    assert time.monotonic() - started <= 0.6 + SLACK


def test_a_tls_handshake_that_never_ends_is_cut_at_the_deadline(trusting_pool, tls_server):
    server = tls_server(OK, handshake=False)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        HttpClient("echo", SLOW_READS).send("GET", server.url + "/x", deadline=Deadline(0.5))
    assert time.monotonic() - started <= 0.5 + SLACK  # not the connect timeout's 3 s

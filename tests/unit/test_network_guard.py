"""The suite itself may reach loopback only: pytest-socket is on, with loopback as the only allowed hosts."""

import socket


def test_only_loopback_hosts_are_allowed(request):
    allowed = set(request.config.getoption("allow_hosts").split(","))
    assert allowed == {"127.0.0.1", "::1", "localhost"}


def test_connect_is_guarded():
    # pytest-socket replaces socket.connect; connecting to loopback still works (a listening socket here).
    assert socket.socket.connect.__module__ == "pytest_socket"
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname(), timeout=1):
        pass

"""The HTTP layer's clocks without a network: what a Deadline leaves, how its sleep ends, and the watchdog that
shuts an attempt's sockets down at its end (socket pairs stand in for connections)."""

from __future__ import annotations

import socket
import threading
import time
import types

import pytest

from sms_status import http
from sms_status.http import Deadline, HttpSettings, _Attempt, deadline_scope
from tests.conftest import eventually


@pytest.fixture
def clock(monkeypatch):
    """http.py's monotonic clock, moved by hand (the real one everywhere else, the watchdog's thread included
    only while no attempt is due)."""
    now = types.SimpleNamespace(value=1000.0)
    monkeypatch.setattr(http, "time", types.SimpleNamespace(monotonic=lambda: now.value, time=time.time))
    return now


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.settimeout(2)  # a read the watchdog failed to cut fails the test instead of hanging it
    yield a, b
    a.close()
    b.close()


def test_a_deadline_ends_its_seconds_from_now(clock):
    deadline = Deadline(7.5)
    assert (deadline.seconds, deadline.at) == (7.5, 1007.5)
    clock.value += 2.5
    assert deadline.remaining() == 5.0
    assert not deadline.expired()
    clock.value += 5.0
    assert deadline.expired()
    clock.value += 1.0
    assert deadline.remaining() == -1.0


def test_a_deadline_can_be_given_its_end_point(clock):
    deadline = Deadline(3, at=1001.0)
    assert deadline.remaining() == 1.0
    assert not deadline.expired()


def test_a_child_shares_the_end_but_is_cancelled_on_its_own(clock):
    parent = Deadline(4)
    clock.value += 1  # a round started later still ends with the lookup
    child = parent.child()
    assert (child.seconds, child.at) == (4, 1004.0)
    child.cancel()
    assert child.cancelled
    assert child.remaining() == 0.0
    assert child.expired()
    assert not parent.cancelled
    assert parent.remaining() == 3.0


def test_a_cancelled_deadline_leaves_nothing(clock):
    deadline = Deadline(10)
    assert not deadline.cancelled
    deadline.cancel()
    assert deadline.cancelled
    assert deadline.remaining() == 0.0
    assert deadline.expired()


def test_a_sleep_that_fits_is_slept_whole(clock):
    deadline = Deadline(0.125)
    started = time.monotonic()
    assert deadline.sleep(0.125) is True  # exactly what is left: all of it is slept
    assert 0.1 <= time.monotonic() - started < 1


def test_a_sleep_past_the_end_is_cut_at_the_end(clock):
    deadline = Deadline(0.0625)
    started = time.monotonic()
    assert deadline.sleep(30) is False
    assert time.monotonic() - started < 1


def test_a_sleep_after_the_end_returns_at_once(clock):
    deadline = Deadline(1)
    clock.value += 5
    started = time.monotonic()
    assert deadline.sleep(0.5) is False
    assert time.monotonic() - started < 0.25


def test_cancelling_ends_a_sleep_in_progress():
    deadline = Deadline(30)
    threading.Timer(0.1, deadline.cancel).start()
    started = time.monotonic()
    assert deadline.sleep(20) is False
    assert time.monotonic() - started < 5


def test_a_cancelled_deadline_does_not_sleep():
    deadline = Deadline(30)
    deadline.cancel()
    started = time.monotonic()
    assert deadline.sleep(5) is False
    assert time.monotonic() - started < 1


def test_the_deadline_in_scope_is_restored_after_it():
    outer, inner = Deadline(5), Deadline(1)
    assert http.current_deadline() is None
    with deadline_scope(outer):
        with deadline_scope(inner) as given:
            assert given is inner
            assert http.current_deadline() is inner
        assert http.current_deadline() is outer
    assert http.current_deadline() is None


def test_the_budget_counts_every_attempt_and_every_pause():
    # 4 attempts of connect + read, and pauses of at most 0.1, 0.2, then 0.4 capped at 0.3
    settings = HttpSettings(connect_timeout=1, read_timeout=2, retries=3, backoff_factor=0.1, backoff_max=0.3)
    assert settings.budget() == pytest.approx(4 * 3 + 0.1 + 0.2 + 0.3)


def test_an_attempt_ends_its_seconds_from_now(clock):
    attempt = _Attempt(2.5)
    assert (attempt.seconds, attempt.ends_at) == (2.5, 1002.5)
    assert attempt.expired is False
    assert attempt.finished is False


def test_expiring_an_attempt_shuts_its_sockets_down(pair):
    a, _b = pair
    attempt = _Attempt(30)
    attempt.watch(a)
    attempt.watch(None)  # no socket yet: nothing to watch
    attempt.expire()
    assert attempt.expired is True
    assert a.recv(1) == b""  # shut down: a blocked read returns at once


def test_a_socket_handed_over_after_the_end_is_shut_down_at_once(pair):
    a, _b = pair
    attempt = _Attempt(30)
    attempt.expire()
    attempt.watch(a)
    assert a.recv(1) == b""


def test_a_finished_attempt_leaves_its_sockets_alone(pair):
    a, b = pair
    attempt = _Attempt(30)
    attempt.watch(a)
    attempt.cancel()
    attempt.expire()  # the watchdog, late: the connection may be back in the pool
    assert attempt.expired is False
    b.sendall(b"x")
    assert a.recv(1) == b"x"


def test_a_socket_already_closed_is_no_error_for_the_watchdog():
    sock = socket.socket()
    sock.close()
    attempt = _Attempt(30)
    attempt.watch(sock)
    attempt.expire()  # the connection was closed before the end: nothing to shut down, nothing raised
    unconnected = socket.socket()
    try:
        http._shutdown(unconnected)  # ENOTCONN
    finally:
        unconnected.close()


@pytest.fixture
def watchdog(monkeypatch):
    """A watchdog of the test's own, its thread started by the test (the module's one may be running already)."""
    fresh = http._Watchdog()
    monkeypatch.setattr(http, "_WATCHDOG", fresh)
    return fresh


def test_the_watchdog_expires_an_attempt_at_its_end(watchdog, pair):
    a, _ = pair
    attempt = _Attempt(0.2)
    attempt.watch(a)
    started = time.monotonic()
    attempt.start()
    assert a.recv(1) == b""  # the blocked read is cut by the watchdog, not by the 2 s socket timeout
    assert 0.15 <= time.monotonic() - started < 1.5
    assert attempt.expired


def test_a_later_attempt_ending_sooner_is_expired_first(watchdog, pair):
    a, _ = pair
    late, soon = _Attempt(20), _Attempt(0.2)
    late.start()  # the watchdog now waits for this one...
    soon.watch(a)
    soon.start()  # ...and must wake up for this one
    try:
        started = time.monotonic()
        assert a.recv(1) == b""
        assert time.monotonic() - started < 1.5
        assert soon.expired
        assert not late.expired
    finally:
        late.cancel()


def test_a_finished_attempt_is_never_expired(watchdog):
    attempt = _Attempt(0.05)
    attempt.start()
    attempt.cancel()
    after = _Attempt(0.1)
    after.start()
    assert eventually(lambda: after.expired, 2)  # the watchdog went past the finished one
    assert not attempt.expired


def test_the_watchdog_is_one_daemon_thread_for_every_attempt(watchdog):
    attempts = [_Attempt(0.05) for _ in range(5)]
    attempts[0].start()
    thread = watchdog._thread
    for attempt in attempts[1:]:
        attempt.start()
    assert eventually(lambda: all(a.expired for a in attempts), 2)
    assert watchdog._thread is thread
    assert (thread.name, thread.daemon) == ("http-watchdog", True)  # never holds the process (or a Lambda freeze) open

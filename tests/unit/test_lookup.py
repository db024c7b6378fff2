"""StatusService without a network: distinct ids, validation first, rotation, fan-out bounds and deadline."""

import threading
import time

import pytest

from sms_status.errors import InvalidRequest, ProviderAuthError, ProviderTimeout, ProviderUnavailable
from sms_status.http import current_deadline
from sms_status.lookup import StatusService
from sms_status.model import Provider, ProviderStatus, Report, Status


class Secrets:
    def __init__(self, *values):
        self.values = list(values)
        self.reads = []

    def get(self, *, refresh=False):
        self.reads.append(refresh)
        if refresh:  # the rotated value replaces the cached one
            self.values.pop(0)
        return self.values[0]


class FakeService(StatusService):
    provider = Provider.OPENMARKET

    def __init__(self, answer, **kwargs):
        super().__init__(Secrets("old", "new"), make_client=lambda creds: creds, **kwargs)
        self.answer = answer
        self.calls = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()

    def validate(self, key, kind):
        if key == "bad":
            raise InvalidRequest("bad id")

    def fetch_one(self, client, key, kind):
        with self.lock:
            self.calls.append((client, key))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self.answer(client, key)
        finally:
            with self.lock:
                self.in_flight -= 1


def delivered(client, key):
    return Report(Provider.OPENMARKET, key, Status.DELIVERED, True, ProviderStatus("4"))


def test_distinct_ids_in_request_order():
    service = FakeService(delivered)
    assert [r.id for r in service.lookup(["b", "a", "b", "c"])] == ["b", "a", "c"]
    assert sorted(key for _, key in service.calls) == ["a", "b", "c"]


def test_validation_happens_before_any_request():
    service = FakeService(delivered)
    with pytest.raises(InvalidRequest):
        service.lookup(["a", "bad"])
    assert service.calls == []


def test_fan_out_is_bounded():
    def slow(client, key):
        time.sleep(0.02)
        return delivered(client, key)

    service = FakeService(slow, fan_out=4)
    service.lookup([str(i) for i in range(20)])
    assert 1 < service.max_in_flight <= 4


def test_a_refused_secret_is_read_again_once():
    def needs_new(client, key):
        if client != "new":
            raise ProviderAuthError("openmarket", "refused")
        return delivered(client, key)

    service = FakeService(needs_new)
    assert [r.status for r in service.lookup(["a", "b"])] == [Status.DELIVERED] * 2
    assert service.secrets.reads == [False, True]


def test_the_deadline_turns_late_ids_into_timeout_reports():
    def stuck_on_b(client, key):
        if key == "b" and not current_deadline().sleep(5):  # cut short when the round ends
            raise ProviderTimeout("openmarket", "cut")  # as the HTTP layer does
        return delivered(client, key)

    service = FakeService(stuck_on_b, deadline=0.2)
    started = time.monotonic()
    reports = service.lookup(["a", "b", "c"])
    assert time.monotonic() - started < 1  # the round ended at the deadline, its stuck thread joined
    assert [r.status for r in reports] == [Status.DELIVERED, Status.UNKNOWN, Status.DELIVERED]
    assert reports[1].details["error"]["code"] == "provider_timeout"
    assert reports[1].retryable


def test_when_every_id_fails_the_same_way_the_error_is_raised():
    def down(client, key):
        raise ProviderUnavailable("openmarket", "down")

    with pytest.raises(ProviderUnavailable):
        FakeService(down).lookup(["a", "b"])


def test_a_timeout_for_one_id_among_answers_is_a_report():
    def one_slow(client, key):
        if key == "b":
            raise ProviderTimeout("openmarket", "slow")
        return delivered(client, key)

    reports = FakeService(one_slow).lookup(["a", "b"])
    assert (reports[1].status, reports[1].provider_status.code) == (Status.UNKNOWN, "provider_timeout")


def test_when_no_id_got_an_answer_the_error_is_raised_whatever_its_kinds():
    def mixed(client, key):
        raise (ProviderUnavailable if key == "a" else ProviderTimeout)("openmarket", "no")

    with pytest.raises(ProviderUnavailable):
        FakeService(mixed).lookup(["a", "b"])


def test_a_refused_secret_stops_the_fan_out_without_waiting_for_the_others():
    def refused_or_stuck(client, key):
        if client == "old" and key == "a":
            raise ProviderAuthError("openmarket", "refused")
        if client == "old" and not current_deadline().sleep(5):  # would hold the first round until the deadline
            raise ProviderTimeout("openmarket", "cut")  # as the HTTP layer does when its round is cancelled
        return delivered(client, key)

    service = FakeService(refused_or_stuck, deadline=3)
    started = time.monotonic()
    reports = service.lookup(["a", "b", "c"])
    assert time.monotonic() - started < 1
    # The retry with the re-read secret answered everything within the one shared deadline
    assert [r.status for r in reports] == [Status.DELIVERED] * 3
    assert service.secrets.reads == [False, True]

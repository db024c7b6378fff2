"""StatusService without a network: distinct ids, validation first, rotation, fan-out bounds and deadline."""

import threading
import time

import pytest

from sms_status.errors import InvalidRequest, ProviderAuthError, ProviderError, ProviderTimeout, ProviderUnavailable
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


# ---- what a failed lookup of one id leaves, and the round's end ------------------------------------
def test_wwt_ids_given_as_json_numbers_become_their_decimal_strings():
    from sms_status.lookup import as_key

    assert as_key(0, Provider.WWT, "id") == "0"
    assert as_key(211, Provider.WWT, "id") == "211"
    # Anything else is left for validation to judge: a bool, a negative number, a reference, another provider
    assert as_key(True, Provider.WWT, "id") is True
    assert as_key(-1, Provider.WWT, "id") == -1
    assert as_key(211, Provider.WWT, "reference") == 211
    assert as_key(211, Provider.WOOXY, "id") == 211


@pytest.mark.parametrize(
    ("error", "code", "retryable"),
    [
        (ProviderTimeout("openmarket", "slow"), "provider_timeout", True),
        (ProviderUnavailable("openmarket", "down"), "provider_unavailable", True),
        (ProviderError("openmarket", "unreadable"), "provider_error", False),
        (ProviderError("openmarket", "no such ticket", provider_code="3", provider_description="not found"), "3", False),
    ],
)
def test_an_error_report_says_how_the_lookup_of_its_id_failed(error, code, retryable):
    from sms_status.lookup import error_report, failed_lookup

    report = error_report(Provider.OPENMARKET, "t1", error)
    assert (report.provider, report.id, report.status, report.final) == (Provider.OPENMARKET, "t1", Status.UNKNOWN, False)
    assert report.retryable is retryable
    assert (report.provider_status.code, report.provider_status.description) == (code, error.message)
    assert report.details == {"error": error.to_body()["error"]}
    assert failed_lookup(report) == error.code


def test_a_real_answer_is_not_a_failed_lookup():
    from sms_status.lookup import failed_lookup

    assert failed_lookup(delivered(None, "a")) is None
    with_details = Report(Provider.OPENMARKET, "a", Status.FAILED, True, ProviderStatus("5"), details={"error": "expired"})
    assert failed_lookup(with_details) is None  # a provider's own text under "error" is not ours
    assert (
        failed_lookup(Report(Provider.OPENMARKET, "a", Status.UNKNOWN, False, ProviderStatus("x"), details={"error": {}}))
        == "provider_error"
    )


def test_a_kind_the_provider_does_not_have_is_refused_before_any_request():
    service = FakeService(delivered)
    with pytest.raises(InvalidRequest) as caught:
        service.lookup(["a"], kind="reference")
    assert caught.value.message == "openmarket messages cannot be looked up by reference"
    assert service.calls == []


def test_a_bad_reference_is_named_a_reference():
    class ByReference(FakeService):
        kinds = frozenset({"id", "reference"})

    with pytest.raises(InvalidRequest, match=r"^each reference must be"):
        ByReference(delivered).lookup(["ok", " "], kind="reference")


@pytest.mark.parametrize(("seconds", "expected"), [(None, 7), (3, 3), (30, 7), (-1, 0.0)])
def test_the_lookup_deadline_is_the_seconds_asked_for_within_the_services_own(seconds, expected):
    seen = []

    def note(client, key):
        seen.append(current_deadline().seconds)
        return delivered(client, key)

    FakeService(note, deadline=7).lookup(["a"], seconds=seconds)
    assert seen == [expected]


def test_a_single_id_is_asked_on_the_callers_thread_under_the_lookups_deadline():
    seen = []

    def note(client, key):
        seen.append((threading.current_thread(), current_deadline()))
        return delivered(client, key)

    assert [r.id for r in FakeService(note, deadline=7).lookup(["a", "a"])] == ["a"]
    ((thread, deadline),) = seen
    assert thread is threading.current_thread()
    assert not deadline.cancelled  # no round of its own to end


def test_each_id_of_a_fan_out_runs_under_a_round_that_ends_with_the_lookup():
    seen = []

    def note(client, key):
        seen.append((threading.current_thread().name, current_deadline()))
        return delivered(client, key)

    FakeService(note, deadline=7).lookup(["a", "b", "c"])
    names, rounds = zip(*seen, strict=True)
    assert all(name.startswith("openmarket-lookup") for name in names)
    assert len({id(r) for r in rounds}) == 1
    assert rounds[0].seconds == 7
    assert rounds[0].cancelled  # requests still in flight would have been cut
    assert not [t for t in threading.enumerate() if t.name.startswith("openmarket-lookup")]


def until_cancelled(client, key):
    """Holds its thread until the round's deadline is cancelled (as the HTTP layer's watchdog does to a request)."""
    deadline = current_deadline()
    end = time.monotonic() + 5
    while not deadline.cancelled and time.monotonic() < end:
        time.sleep(0.005)
    raise ProviderTimeout("openmarket", "cut")


def test_ids_not_started_by_the_deadline_are_never_asked():
    def first_hangs(client, key):
        return until_cancelled(client, key) if key == "a" else delivered(client, key)

    service = FakeService(first_hangs, fan_out=1, deadline=0.2)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):  # no id got an answer
        service.lookup(["a", "b", "c"])
    assert time.monotonic() - started < 0.8  # the round ended at the deadline, not when its thread gave up
    assert [key for _, key in service.calls] == ["a"]
    assert not [t for t in threading.enumerate() if t.name.startswith("openmarket-lookup")]


def test_an_id_never_asked_gets_the_lookups_own_timeout():
    def b_hangs(client, key):
        return until_cancelled(client, key) if key == "b" else delivered(client, key)

    reports = FakeService(b_hangs, fan_out=1, deadline=0.2).lookup(["a", "b", "c"])
    assert reports[0].status is Status.DELIVERED
    assert reports[1].details["error"]["message"] == "cut"  # asked, and cut by the HTTP layer
    error = reports[2].details["error"]
    assert (error["code"], error["message"]) == ("provider_timeout", "no answer within the lookup deadline of 0.2s")
    assert error["details"] == {"provider": "openmarket"}
    assert [r.provider for r in reports] == [Provider.OPENMARKET] * 3
    assert reports[2].retryable


def test_a_credentials_retry_needs_only_a_useful_attempts_time_when_the_secret_is_read_at_once():
    def needs_new(client, key):
        if client != "new":
            raise ProviderAuthError("openmarket", "refused")
        return delivered(client, key)

    service = FakeService(needs_new, deadline=0.8)  # these secrets have no read budget: re-reading costs nothing
    assert [r.status for r in service.lookup(["a"])] == [Status.DELIVERED]
    assert service.secrets.reads == [False, True]


@pytest.mark.parametrize(("deadline", "retried"), [(1.2, False), (3, True)])
def test_a_credentials_retry_needs_the_read_budget_and_a_useful_attempt(deadline, retried):
    def needs_new(client, key):
        if client != "new":
            raise ProviderAuthError("openmarket", "refused")
        return delivered(client, key)

    service = FakeService(needs_new, deadline=deadline)
    service.secrets.read_budget = 1.0  # 0.2 s left after reading the secret is too little for a request
    if retried:
        assert [r.status for r in service.lookup(["a"])] == [Status.DELIVERED]
    else:
        with pytest.raises(ProviderAuthError):
            service.lookup(["a"])
    assert service.secrets.reads == [False, True] if retried else [False]


@pytest.mark.parametrize("keys", [["r1"], ["r1", "r2"]], ids=["single", "fan-out"])
def test_the_kind_asked_for_reaches_validation_and_every_request(keys):
    class ByReference(FakeService):
        kinds = frozenset({"id", "reference"})

        def validate(self, key, kind):
            self.validated.append(kind)

        def fetch_one(self, client, key, kind):
            self.asked.append(kind)
            return delivered(client, key)

    service = ByReference(delivered)
    service.validated, service.asked = [], []
    service.lookup(keys, kind="reference")
    assert service.validated == service.asked == ["reference"] * len(keys)

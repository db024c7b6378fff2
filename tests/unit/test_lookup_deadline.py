"""The lookup's one deadline, without a network: it is in scope for every request, the credentials retry
happens only when it fits, and Wooxy chunks share it (the secret read's own bounds: test_secrets_extension_client.py)."""

from __future__ import annotations

import pytest

from sms_status.errors import ProviderAuthError, ProviderTimeout, ProviderUnavailable
from sms_status.http import current_deadline
from sms_status.lookup import StatusService
from sms_status.model import Provider, ProviderStatus, Report, Status
from sms_status.services import WooxyService


class Secrets:
    def __init__(self, read_budget: float = 0.0) -> None:
        self.read_budget = read_budget
        self.reads: list[bool] = []

    def get(self, *, refresh: bool = False) -> str:
        self.reads.append(refresh)
        return "new" if refresh else "old"


class OneIdService(StatusService):
    provider = Provider.WWT

    def __init__(self, fetch_one, **kwargs) -> None:
        super().__init__(kwargs.pop("secrets", Secrets()), make_client=lambda creds: creds, **kwargs)
        self._fetch_one = fetch_one

    def fetch_one(self, client, key, kind):
        return self._fetch_one(client, key)


def answered(key: str, status: Status = Status.DELIVERED) -> Report:
    return Report(Provider.WWT, key, status, True, ProviderStatus("delivered"))


def test_a_single_id_request_runs_under_the_lookups_deadline():
    seen = []

    def fetch(client, key):
        seen.append(current_deadline().remaining())
        return answered(key)

    OneIdService(fetch, deadline=7).lookup(["1"])
    assert 6 < seen[0] <= 7


def test_the_credentials_retry_shares_the_one_deadline():
    deadlines = []

    def fetch(client, key):
        deadlines.append(current_deadline())
        if client == "old":
            raise ProviderAuthError("wwt", "refused")
        return answered(key)

    OneIdService(fetch, deadline=7).lookup(["1"])
    assert len(deadlines) == 2
    assert deadlines[0].at == deadlines[1].at


def test_no_credentials_retry_when_the_secret_could_not_be_re_read_in_time():
    def refused(client, key):
        raise ProviderAuthError("wwt", "refused")

    secrets = Secrets(read_budget=10)
    with pytest.raises(ProviderAuthError):
        OneIdService(refused, deadline=5, secrets=secrets).lookup(["1"])
    assert secrets.reads == [False]  # the refusal is the answer (a 503), not a 504 after a re-read


class FakeWooxyClient:
    def __init__(self, failing_chunk: int | None) -> None:
        self.failing_chunk = failing_chunk
        self.chunks: list[list[str]] = []
        self.deadlines = []

    def statuses(self, ids):
        self.chunks.append(list(ids))
        self.deadlines.append(current_deadline())
        if len(self.chunks) - 1 == self.failing_chunk:
            raise ProviderTimeout("wooxy", "no answer in time")
        return [Report(Provider.WOOXY, i, Status.SENT, False, ProviderStatus("sent")) for i in ids]


def wooxy_lookup(client: FakeWooxyClient, ids: list[str]) -> list[Report]:
    service = WooxyService(Secrets(), make_client=lambda creds: client, deadline=9)
    return service.lookup(ids)


def test_wooxy_chunks_of_100_share_the_deadline_and_a_failed_chunk_loses_only_its_ids():
    ids = [f"{n:024x}" for n in range(250)]
    client = FakeWooxyClient(failing_chunk=1)

    reports = wooxy_lookup(client, ids)

    assert [len(chunk) for chunk in client.chunks] == [100, 100, 50]
    assert len({d.at for d in client.deadlines}) == 1
    assert [r.id for r in reports] == ids
    assert all(r.status is Status.SENT for r in reports[:100] + reports[200:])
    assert all(r.details["error"]["code"] == "provider_timeout" for r in reports[100:200])


def test_wooxy_chunks_that_all_fail_are_the_error():
    class Down(FakeWooxyClient):
        def statuses(self, ids):
            raise ProviderUnavailable("wooxy", "down")

    with pytest.raises(ProviderUnavailable):
        wooxy_lookup(Down(None), [f"{n:024x}" for n in range(150)])

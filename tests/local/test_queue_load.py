"""The queue path under load on the local stack (local/queue_load.py: what `make run` runs, the sandboxes at 200 ms
a request): single-id sender messages are checked together, within the provider's share of the stack's limits.

Each run is bounded: it waits at most TIMEOUT seconds after the last enqueue for every first check, then fails
with the figures it saw (`LoadResult.summary`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.queue_load import QueueLoad

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MESSAGES = 1_000
RATE = 500  # messages a second, steady: 1,000 enqueued over 2 s
LATENCY = 0.2  # seconds a provider request takes
TIMEOUT = 90  # seconds after the last enqueue
WOOXY_CONCURRENT_LIMIT = 10  # Wooxy documents no more than 10 concurrent API requests


@pytest.fixture(scope="module")
def load() -> Iterator[QueueLoad]:
    with QueueLoad() as load:  # the template's re-check schedule: no re-check within a run
        yield load


def test_single_id_wooxy_messages_are_first_checked_up_to_100_ids_a_request(load: QueueLoad) -> None:
    result = load.run("wooxy", MESSAGES, latency=LATENCY, rate=RATE, timeout=TIMEOUT)
    figures = result.summary()

    assert not result.timed_out, figures
    assert result.first_checked == MESSAGES, figures
    assert result.requests <= 15, figures
    assert max(result.ids_per_request) <= 100, figures
    assert result.max_in_flight <= WOOXY_CONCURRENT_LIMIT, figures
    assert sum(result.dlq.values()) == 0, figures


def test_openmarket_requests_in_flight_stay_within_the_queue_paths_share(load: QueueLoad) -> None:
    share = load.queue_share("openmarket")
    invocations = share.reserved if share.reserved is not None else share.max_concurrency
    assert invocations is not None, f"nothing in the template bounds the OpenMarket queue path: {share}"
    bound = invocations * share.fan_out  # each invocation has at most FAN_OUT requests in flight

    result = load.run("openmarket", MESSAGES, latency=LATENCY, rate=RATE, timeout=TIMEOUT)
    figures = f"{result.summary()}\n  share {share}: at most {bound} in flight"

    assert not result.timed_out, figures
    assert result.first_checked == MESSAGES, figures
    assert 0 < result.max_in_flight <= bound, figures
    assert sum(result.dlq.values()) == 0, figures

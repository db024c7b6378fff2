"""Every path at once on the local stack, with Lambda's throttling emulated (local/queue_load.py: what `make run`
runs): a 20,000-id bulk job, API lookups and 1,000 single-id tracking messages, all against Wooxy.

Each path holds its own share of Wooxy's 10 concurrent requests (docs/operations.md, "Capacity budget"): the API
function's reservation, the chunk function's (and the Map's concurrency), the tracking function's. API calls over
their share are refused by Lambda (the caller retries), bulk chunks over theirs are retried by the state machine, and
the queue's event sources never exceed the tracking function's reservation, so tracking is never throttled.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

from local.lambda_runtime import FunctionThrottled
from local.queue_load import QueueLoad
from tests.apigw import rest_event

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

JOB_IDS = 20_000
MESSAGES = 1_000
LATENCY = 0.05  # seconds a Wooxy request takes
WOOXY_CONCURRENT_LIMIT = 10  # Wooxy documents no more than 10 concurrent API requests
JOB_TIMEOUT = 600  # seconds for the job to finish on this machine (moto's interpreter runs 200 chunks)


def test_bulk_api_and_tracking_at_once_stay_within_wooxys_limit_and_lose_nothing() -> None:
    with QueueLoad() as load:
        functions = load.aws.functions
        bulk, api = functions["WooxyBulkFunction"], functions["WooxyFunction"]
        sandbox = load.sandbox("wooxy")
        sandbox.latency = LATENCY
        sandbox.reset_stats()

        # A 20,000-id job is submitted (ids the sandbox does not know: each answers not_found)
        job_ids = [f"b{n:023x}" for n in range(JOB_IDS)]
        submitted = bulk.invoke(rest_event("POST", "/wooxy/bulk-jobs", body={"ids": job_ids}))
        assert submitted["statusCode"] == 202, submitted["body"]
        job_id = json.loads(submitted["body"])["job_id"]

        # API callers look messages up the whole time, retrying when Lambda refuses them (the API's share is full)
        for n in range(4):
            sandbox.add_message(f"a{n:023x}", steps=[(0, "delivered")])
        stop, answers = threading.Event(), Counter()

        def api_caller(n: int) -> None:
            while not stop.is_set():
                try:
                    reply = api.invoke(rest_event("GET", "/wooxy/messages/{id}", {"id": f"a{n:023x}"}))
                    answers[reply["statusCode"]] += 1
                except FunctionThrottled:
                    answers["throttled"] += 1
                    time.sleep(0.05)

        callers = [threading.Thread(target=api_caller, args=(n,), daemon=True) for n in range(4)]
        for caller in callers:
            caller.start()
        try:
            # And 1,000 single-id tracking messages arrive meanwhile
            result = load.run("wooxy", MESSAGES, latency=LATENCY, rate=500, timeout=180)
            # The job runs to its end while the API keeps asking
            deadline = time.monotonic() + JOB_TIMEOUT
            while time.monotonic() < deadline:
                document = json.loads(bulk.invoke(rest_event("GET", "/wooxy/bulk-jobs/{job_id}", {"job_id": job_id}))["body"])
                if document["state"] != "running":
                    break
                time.sleep(1)
        finally:
            stop.set()
            for caller in callers:
                caller.join(10)

        figures = f"{result.summary()}\n  job {document['state']} {document.get('done')}/{JOB_IDS}; API answers {dict(answers)}"
        # Then every tracking message was checked and none reached a DLQ
        assert not result.timed_out, figures
        assert result.first_checked == MESSAGES, figures
        assert sum(load.dead_letter_counts().values()) == 0, figures
        # Wooxy never saw more than its 10 concurrent requests, whatever the mix
        assert 0 < sandbox.max_in_flight <= WOOXY_CONCURRENT_LIMIT, figures
        # The job succeeded with a report for every id
        assert document["state"] == "succeeded", figures
        assert document["total"] == JOB_IDS, figures
        assert sum(document["counts"].values()) == JOB_IDS, figures
        # The API answered throughout (over its share Lambda refused the call; the caller retried)
        assert answers[200] > 0, figures
        assert set(answers) <= {200, "throttled"}, figures
        # The tracking functions were never throttled: their event sources stay within their reservation
        tracking = functions["WooxyTrackingFunction"]
        assert tracking.throttles == 0, figures
        assert tracking.max_concurrent <= tracking.reserved_concurrency, figures

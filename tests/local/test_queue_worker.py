"""The emulated SQS event source (local/queue_worker.py) against moto's SQS: batches gathered over several
receives within the batching window, at most MaximumConcurrency invocations at once, Lambda's 6 MB payload
limit, and a throttled invocation leaving its records on the queue until the visibility timeout."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.queue_worker import MAX_PAYLOAD_BYTES, QueueWorker
from local.stack import LocalAws
from local.template import LocalSetupError
from tests.local.probe_stack import TEMPLATE, Holder, event_size, mapping, probe_stack, queue_counts, send, set_handler, wait_for
from tests.sqs_events import SqsClock


class Recorder:
    """The Probe function's handler: records every batch and how many ran at once. The first `meet` invocations
    wait for each other (bounded), so a poller that cannot run that many at once fails the test."""

    def __init__(self, holder: Holder, meet: int = 0) -> None:
        self.holder = holder
        self.batches: list[list[dict[str, Any]]] = []
        self.sizes: list[int] = []
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()
        self._meeting = threading.Barrier(meet, timeout=10) if meet else None
        self._meet = meet

    def __call__(self, event: Any, _context: Any) -> Any:
        held = self.holder.handle(event)
        if held is not None:
            return held
        with self._lock:
            self.batches.append(event["Records"])
            self.sizes.append(event_size(event))
            arrival = len(self.batches)
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if self._meeting is not None and arrival <= self._meet:
                self._meeting.wait()
            return {"batchItemFailures": []}
        finally:
            with self._lock:
                self.running -= 1

    def bodies(self) -> list[str]:
        with self._lock:
            return [record["body"] for batch in self.batches for record in batch]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalAws]:
    with probe_stack(tmp_path) as aws:
        yield aws


@pytest.fixture
def probe(stack: LocalAws) -> Iterator[Holder]:
    holder = Holder(stack.functions["Probe"])  # reserved concurrency 2
    yield holder
    holder.release()


@pytest.fixture
def workers() -> Iterator[list[QueueWorker]]:
    started: list[QueueWorker] = []
    yield started
    for worker in started:
        assert worker.stop(10), "a queue worker did not stop within 10 s"


def test_the_template_settings_reach_the_mapping_and_concurrency_defaults_to_5(stack: LocalAws):
    bulk, plain = mapping(stack, "Bulk"), mapping(stack, "Plain")
    assert (bulk.batch_size, bulk.batching_window_seconds, bulk.maximum_concurrency, bulk.concurrency) == (100, 1, 2, 2)
    assert bulk.report_batch_item_failures
    assert (plain.batch_size, plain.batching_window_seconds, plain.maximum_concurrency, plain.concurrency) == (10, 0, None, 5)
    assert QueueWorker(plain, stack.client("sqs")).concurrency == 5


@pytest.mark.parametrize(
    ("line", "replacement", "message"),
    [
        ("BatchSize: 100", "BatchSize: 10001", "BatchSize must be 1-10000"),
        ("MaximumBatchingWindowInSeconds: 1", "MaximumBatchingWindowInSeconds: 0", "over 10 needs MaximumBatchingWindowInSeconds"),
        ("MaximumBatchingWindowInSeconds: 1", "MaximumBatchingWindowInSeconds: 301", "MaximumBatchingWindowInSeconds must be 0-300"),
        ("MaximumConcurrency: 2", "MaximumConcurrency: 1", "MaximumConcurrency must be 2-1000"),
    ],
)
def test_settings_lambda_refuses_stop_the_build(tmp_path: Path, line: str, replacement: str, message: str):
    assert TEMPLATE.count(line) == 1
    with pytest.raises(LocalSetupError, match=message), probe_stack(tmp_path, TEMPLATE.replace(line, replacement)):
        pass


def test_250_records_go_in_batches_of_up_to_100_gathered_over_several_receives_2_at_once(stack: LocalAws, probe: Holder, workers):
    bulk = mapping(stack, "Bulk")  # BatchSize 100, window 1 s, MaximumConcurrency 2 (= the reserved concurrency)
    recorder = Recorder(probe, meet=2)
    set_handler(probe.function, recorder)
    bodies = [json.dumps({"n": n}) for n in range(250)]
    send(stack, bulk.queue_url, bodies)

    worker = QueueWorker(bulk, stack.client("sqs"), log=lambda _line: None).start()
    workers.append(worker)
    wait_for(lambda: len(recorder.bodies()) >= 250 and queue_counts(stack, bulk.queue_url) == (0, 0), 30, "250 records processed")

    assert sorted(recorder.bodies()) == sorted(bodies)  # each exactly once, and deleted (the queue is empty)
    sizes = [len(batch) for batch in recorder.batches]  # typically [100, 100, 50], the last one ended by the window
    assert all(size <= 100 for size in sizes), sizes
    assert max(sizes) > 10, sizes  # gathered over several receives (a slow machine may close a window early)
    stats = worker.stats()
    assert stats["receives"] >= 25  # SQS gives at most 10 a receive
    assert (stats["batches"], stats["records"], stats["largest_batch"]) == (len(sizes), 250, max(sizes))
    assert recorder.most == 2  # two at once, never more
    assert stats["max_in_flight"] == 2
    assert probe.function.throttles == 0  # MaximumConcurrency <= reserved concurrency: never throttled
    assert stats["throttled_batches"] == 0


def test_a_batch_never_exceeds_lambdas_6_mb_payload(stack: LocalAws, probe: Holder, workers):
    bulk = mapping(stack, "Bulk")
    recorder = Recorder(probe)
    set_handler(probe.function, recorder)
    bodies = [f"{n:03d}" + "x" * 200_000 for n in range(40)]  # 8 MB in all, under SQS's 256 KiB each
    sqs = stack.client("sqs")
    for body in bodies:  # one at a time: SendMessageBatch takes at most 1 MiB
        sqs.send_message(QueueUrl=bulk.queue_url, MessageBody=body)

    workers.append(QueueWorker(dataclasses.replace(bulk, maximum_concurrency=2), stack.client("sqs"), log=lambda _line: None).start())
    wait_for(lambda: len(recorder.bodies()) >= 40, 30, "40 large records processed")

    assert sorted(recorder.bodies()) == sorted(bodies)
    assert len(recorder.batches) >= 2
    assert all(size <= MAX_PAYLOAD_BYTES for size in recorder.sizes)
    assert max(recorder.sizes) > MAX_PAYLOAD_BYTES - 300_000  # batches were filled up to the limit, not cut short


def test_a_throttled_batch_stays_on_the_queue_until_the_visibility_timeout(stack: LocalAws, probe: Holder, workers, monkeypatch):
    clock = SqsClock(monkeypatch)
    plain = mapping(stack, "Plain")  # MaximumConcurrency not set (5) over a reserved concurrency of 2: can be throttled
    recorder = Recorder(probe)
    set_handler(probe.function, recorder)
    probe.hold(2)  # both reserved executions busy (e.g. the other queue's batches)
    send(stack, plain.queue_url, ["a", "b", "c"])
    lines: list[str] = []

    worker = QueueWorker(plain, stack.client("sqs"), log=lines.append).start()
    workers.append(worker)
    wait_for(lambda: worker.stats()["throttled_batches"] >= 1, 10, "a throttled batch")
    receives = worker.stats()["receives"]
    wait_for(lambda: worker.stats()["receives"] >= receives + 2, 10, "the poller to receive twice more")

    # Not deleted, not handed over, not invoked again: in flight until the visibility timeout (30 s, moto's clock)
    assert queue_counts(stack, plain.queue_url) == (0, 3)
    assert recorder.batches == []
    stats = worker.stats()
    assert (stats["throttled_batches"], stats["throttled_records"], stats["batches"]) == (1, 3, 0)
    assert probe.function.throttles == 1
    assert lines == ["[queue] probe: throttled (reserved concurrency 2); 3 record(s) back after the visibility timeout"]

    probe.release()
    clock.advance(31)
    wait_for(lambda: len(recorder.bodies()) == 3 and queue_counts(stack, plain.queue_url) == (0, 0), 15, "the records after the timeout")

    assert sorted(recorder.bodies()) == ["a", "b", "c"]
    received = [record["attributes"]["ApproximateReceiveCount"] for batch in recorder.batches for record in batch]
    assert received == ["2", "2", "2"]  # the throttled receive counted, as on SQS
    assert worker.stats()["throttled_batches"] == 1


def test_stop_is_prompt_while_batches_are_gathered_and_run(stack: LocalAws, probe: Holder):
    bulk = mapping(stack, "Bulk")
    recorder = Recorder(probe)
    set_handler(probe.function, recorder)
    worker = QueueWorker(bulk, stack.client("sqs"), log=lambda _line: None).start()
    send(stack, bulk.queue_url, ["one"])  # a batch whose window is open when stop() comes
    wait_for(lambda: worker.stats()["receives"] >= 1, 10, "a receive")
    assert worker.stop(5)

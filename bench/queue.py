"""The queue path on the local stack (local/queue_load.py: the sandboxes, moto built from template.yaml, one poller
per SQS event source, the real handlers in this process), fed with single-id sender messages `{"ids": ["<id>"]}`.

- First checks: QUEUE_BENCH_MESSAGES (10,000) Wooxy messages enqueued at once, 200 ms a Wooxy request: ids per
  request (target >= 80, bound 100), the most requests in flight, and the time from the last enqueue to the last
  first check stored as a ratio to its bound = (messages / 100 ids a request) / (Wooxy requests the queue path
  may have at once: its event sources' MaximumConcurrency, from the template) x 0.2 s. The wait is bounded
  (QUEUE_BENCH_TIMEOUT, 120 s after the last enqueue): a queue path slower than that prints how far it got.
- Followed to final: 50 single-id messages per provider (Wooxy, OpenMarket), each final at its third check,
  re-checked after 1 s (RECHECK_DELAYS=1,1,1): AWS requests per tracked message by service (SQS counts the
  sends and the event sources' receives that returned messages and their deletes; the pollers' empty long polls
  are shown apart) and Lambda invocations per tracked message.

Run time on the 2-core machine: 3 to 3.5 minutes with the defaults (about 1 minute, plus the first-check wait, which
takes all of QUEUE_BENCH_TIMEOUT while every record is its own request).
Benchmarks measure; they assert nothing.
"""

from __future__ import annotations

import math
import os
import time

from local.queue_load import WOOXY_IDS_PER_REQUEST, LoadResult, QueueLoad

MESSAGES = int(os.environ.get("QUEUE_BENCH_MESSAGES", "10000"))
TIMEOUT = float(os.environ.get("QUEUE_BENCH_TIMEOUT", "120"))
LATENCY = 0.2
FINAL_MESSAGES, FINAL_LATENCY, CHECKS = 50, 0.05, 3


def per_message_line(result: LoadResult) -> str:
    figures = ", ".join(f"{name} {value:.2f}" for name, value in result.per_message().items() if name != "Secrets Manager")
    detail = ", ".join(f"{op} {n / result.count:.2f}" for (service, op), n in sorted(result.aws.items()) if service != "Secrets Manager")
    status = "" if not result.timed_out else f"  (TIMED OUT: {result.final} of {result.count} final)"
    return f"    {result.provider:<10} {figures}{status}\n      {detail}; empty long polls {result.empty_receives}"


def main() -> None:
    started = time.monotonic()
    with QueueLoad(recheck_delays="1,1,1") as load:
        share = load.queue_share("wooxy")
        followed = [
            load.run(provider, FINAL_MESSAGES, latency=FINAL_LATENCY, timeout=120, checks_to_final=CHECKS)
            for provider in ("wooxy", "openmarket")
        ]
        first = load.run("wooxy", MESSAGES, latency=LATENCY, timeout=TIMEOUT)
    at_once = share.invocations or 1
    bound = math.ceil(MESSAGES / WOOXY_IDS_PER_REQUEST) / at_once * LATENCY

    print(f"\n== queue path on the local stack (moto), single-id sender messages ({time.monotonic() - started:.0f} s)")
    print(f"  {MESSAGES:,} Wooxy messages enqueued at once ({first.enqueue_seconds:.1f} s), {LATENCY * 1000:.0f} ms a request:")
    if first.timed_out:
        print(f"    TIMED OUT {TIMEOUT:.0f} s after the last enqueue: {first.first_checked:,} of {MESSAGES:,} first checked")
    print(
        f"    requests {first.requests:,}, ids per request mean {first.mean_ids_per_request:.1f}"
        f" max {max(first.ids_per_request, default=0)}"
        f" (target >= 80, bound {WOOXY_IDS_PER_REQUEST}), max in flight {first.max_in_flight}"
    )
    waited = first.last_first_check if first.last_first_check is not None else TIMEOUT
    more = "" if first.last_first_check is not None else " (at least: timed out)"
    print(
        f"    last enqueue to last first check {waited:6.2f} s{more}   bound {bound:5.2f} s "
        f"({at_once} at once: {', '.join(share.functions)})   ratio {waited / bound:6.2f}"
    )
    print(f"    DLQ messages {sum(first.dlq.values())}")
    print(f"  followed to final ({CHECKS} checks each, {FINAL_MESSAGES} messages a provider), per tracked message:")
    for result in followed:
        print(per_message_line(result))


if __name__ == "__main__":
    main()

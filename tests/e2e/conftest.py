"""The `target` of the black-box suite: `make run` (default) or a deployed stack (`STACK_NAME=... make e2e`).

Local: `python -m local.run` is started as a subprocess on free ports of 127.0.0.1 (tests/local/harness.py), the
suite seeds the sandboxes with messages of known statuses, and every assertion is exact; the server is stopped
at the end. Deployed (E2E_STACK_NAME, set by `make e2e` from STACK_NAME): the stack's Outputs give the URLs,
the caller's default AWS credentials sign; the assertions are the contract's shape (docs/deploy.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.target import Case, Target, deployed_target

E2E_DIR = os.path.dirname(__file__)
ROOT_CONFTEST = os.path.join(os.path.dirname(E2E_DIR), "conftest.py")  # moto's fake credentials, loopback only
STACK_NAME = os.environ.get("E2E_STACK_NAME", "").strip()
KIND = "deployed" if STACK_NAME else "local"
# Re-checks 1 s apart locally (deployed: the stack's RecheckDelays), so a message goes to final in seconds.
LOCAL_RECHECK_DELAYS = "1,1,2"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "deployed_only: a check that holds only against a deployed stack (not collected locally)")
    if STACK_NAME and any(getattr(plugin, "__file__", None) == ROOT_CONFTEST for plugin in config.pluginmanager.get_plugins()):
        # tests/conftest.py replaced the credentials with moto's fake ones: this is `make test`, not `make e2e`.
        raise pytest.UsageError("E2E_STACK_NAME is set: run the deployed suite with `STACK_NAME=<stack> make e2e`, not `make test`")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A deployed-only check is not collected against the local target (never skipped: simply not there)."""
    if KIND == "deployed":
        return
    dropped = [item for item in items if item.get_closest_marker("deployed_only") and str(item.path).startswith(E2E_DIR)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


# ---- the local target: seeded sandboxes, exact expectations -------------------------------------------------------------
LOCAL_SEEDS = {
    "openmarket": [
        ({"id": "E2E-OM-DELIVERED", "steps": [[0, 4]]}, "delivered"),
        ({"id": "E2E-OM-UNDELIVERED", "steps": [[0, 509]]}, "undelivered"),
        ({"id": "E2E-OM-PENDING", "steps": [[0, 2]]}, "pending"),
    ],
    "wooxy": [
        ({"id": "e2e00000000000000000000a", "steps": [[0, "delivered"]]}, "delivered"),
        ({"id": "e2e00000000000000000000b", "steps": [[0, "failed"]]}, "failed"),
        ({"id": "e2e00000000000000000000c", "steps": [[0, "queued"]]}, "pending"),
    ],
    "wwt": [
        ({"id": "900001", "steps": [[0, "delivered"]], "reference": "e2eref1"}, "delivered"),
        ({"id": "900002", "steps": [[0, "undeliverable"]], "reference": "e2eref2"}, "undelivered"),
        ({"id": "900003", "steps": [[0, "accepted"]]}, "pending"),
    ],
}
# Followed through the queue: pending now, delivered once the suite moves the sandbox's clock on.
LOCAL_TRACKED = {"id": "E2E-OM-TRACKED", "steps": [[0, 2], [600, 4]]}


def local_target(tmp: Path) -> Iterator[Target]:
    import boto3
    from botocore.credentials import Credentials

    from tests.local.harness import LocalServer, http

    server = LocalServer(tmp, {"RECHECK_DELAYS": LOCAL_RECHECK_DELAYS})
    try:
        server.wait_ready()
        queues = {queue["queue"]: queue["url"] for queue in http("GET", f"{server.url}/_local/queues")[1]["queues"]}
        sqs = boto3.client(  # moto's endpoint of the running service: the same queues its pollers read
            "sqs",
            endpoint_url=f"http://127.0.0.1:{server.moto_port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        target = Target(
            kind="local",
            base_url=server.url,
            region="us-east-1",
            # Signed like a deployed caller (the local server does not check signatures): a request carries an
            # Authorization header whose access key id names the caller.
            credentials=Credentials("AKIDE2ELOCALCALLER", "e2e-local-secret"),
            queue_urls={
                "openmarket": queues["OpenMarketTrackingQueue"],
                "wooxy": queues["WooxyTrackingQueue"],
                "wwt": queues["WwtTrackingQueue"],
            },
            sqs=sqs,
            lookups={provider: [Case(seed["id"], status) for seed, status in seeds] for provider, seeds in LOCAL_SEEDS.items()},
            wwt_references=[Case(seed["reference"], status) for seed, status in LOCAL_SEEDS["wwt"] if "reference" in seed],
            unknown_wwt_id="99999999999999999999",
            track=("openmarket", Case(LOCAL_TRACKED["id"], "delivered")),
            track_timeout=60,
            job_timeout=120,
            sandboxes={
                "openmarket": f"http://127.0.0.1:{server.openmarket_port}",
                "wooxy": f"http://127.0.0.1:{server.wooxy_port}",
                "wwt": f"http://127.0.0.1:{server.wwt_port}",
            },
        )
        for provider, seeds in LOCAL_SEEDS.items():
            target.sandbox(provider, "messages", [seed for seed, _ in seeds])
        target.sandbox("openmarket", "messages", LOCAL_TRACKED)
        yield target
    finally:
        server.stop()


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    if KIND == "deployed":
        yield deployed_target(STACK_NAME)
    else:
        yield from local_target(tmp_path_factory.mktemp("e2e-local-run"))

"""The API document tells the truth: schemathesis, driven by api/openapi.yaml, against `python -m local.run`.

schemathesis generates requests from the document (valid ones, and ones that break it on purpose: wrong types,
unknown fields, undeclared methods, odd characters in paths) and checks every answer: never a 5xx, a status the
document declares for that operation, its content type and body schema, invalid input refused with a 4xx and
valid input not refused.

The one difference from the deployed document: the security requirement (SigV4) is removed, because the local
run does not check signatures (by design: its banner says so). Everything else is the file as deployed.

Bounded: a fixed seed and a fixed number of examples per operation (about a minute on 2 cores), on 127.0.0.1 only.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.local.harness import ROOT, LocalServer

EXAMPLES = 30  # per operation and phase
SEED = 20261129
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def document_without_sigv4(target: Path) -> Path:
    document = yaml.safe_load((ROOT / "api" / "openapi.yaml").read_text())
    document["info"]["title"] = "sms-status-local-api"  # the deployed one is Fn::Sub of the stack name
    document.pop("security", None)
    document["components"].pop("securitySchemes", None)
    for operations in document["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
    target.write_text(yaml.safe_dump(document))
    return target


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    local = LocalServer(tmp_path_factory.mktemp("contract-run"), {})
    try:
        local.wait_ready()
        yield local
    finally:
        local.stop()


@pytest.mark.slow
@pytest.mark.timeout(900)  # the run itself is bounded at 600 s; the server's start comes on top
def test_every_answer_conforms_to_the_api_document(server: LocalServer, tmp_path: Path) -> None:
    # fmt: off
    command = [
        str(SCHEMATHESIS), "run", str(document_without_sigv4(tmp_path / "openapi.yaml")),
        "--url", server.url,
        "--checks", "all",
        "--max-examples", str(EXAMPLES),
        "--seed", str(SEED),
        "--workers", "2",
        "--generation-database", "none",
        "--request-timeout", "60",
        "--no-color",
    ]
    # fmt: on
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "Traceback" not in server.output()  # nothing crashed behind an answer that looked fine

"""Running `python -m local.run` as a subprocess and talking to it over HTTP on 127.0.0.1 (shared by tests/local)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 90.0  # cold imports (moto, boto3) and building the local stack
STOP_TIMEOUT = 15.0
PROVIDER_ENV = ("BASE_URL", "CREDENTIALS", "SANDBOX_PORT")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def http(method: str, url: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class LocalServer:
    def __init__(self, tmp: Path, extra_env: dict[str, str]) -> None:
        self.api_port, self.openmarket_port, self.wooxy_port, self.wwt_port, self.moto_port = free_ports(5)
        env = {key: value for key, value in os.environ.items() if not key.endswith(tuple(f"_{suffix}" for suffix in PROVIDER_ENV))}
        env.update(
            PORT=str(self.api_port),
            OPENMARKET_SANDBOX_PORT=str(self.openmarket_port),
            WOOXY_SANDBOX_PORT=str(self.wooxy_port),
            WWT_SANDBOX_PORT=str(self.wwt_port),
            MOTO_PORT=str(self.moto_port),
            PYTHONUNBUFFERED="1",
        )
        env.update(extra_env)
        self.log_path = tmp / "local-run.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "local.run"], cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"local.run exited with {self.process.returncode}:\n{self.output()}")
            try:
                return http("GET", f"{self.url}/_local/health", timeout=2)[0] == 200
            except OSError:
                return False

        wait_for(ready, READY_TIMEOUT, "the local server to answer")

    def stop(self, stop_signal: signal.Signals = signal.SIGINT) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(stop_signal)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
                self._log.close()
                return None
        self._log.close()
        return self.process.returncode

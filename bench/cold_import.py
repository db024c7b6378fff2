"""Cold import time of each handler: a fresh interpreter per run, median of RUNS runs.

Uses the built layer (.aws-sam/build/SharedLayer/python, as Lambda's /opt/python) when `sam build` has
run, else the source layer.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15
FUNCTIONS = ("openmarket", "wooxy", "wwt", "tracked", "bulk", "openmarket_tracking", "wooxy_tracking", "wwt_tracking", "wooxy_chunks")
PROBE = "import time; t = time.perf_counter(); import app; print(time.perf_counter() - t)"


def layer_path() -> tuple[Path, str]:
    built = ROOT / ".aws-sam" / "build" / "SharedLayer" / "python"
    return (built, "built layer") if built.is_dir() else (ROOT / "layers" / "shared", "source layer")


def measure(function: str, layer: Path) -> list[float]:
    code = ROOT / "functions" / function
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), str(layer)]), "PYTHONDONTWRITEBYTECODE": "0"}
    env.setdefault("POWERTOOLS_SERVICE_NAME", function)
    times = []
    for _ in range(RUNS + 1):  # the first run writes .pyc files, like a deployment package that has them
        out = subprocess.run([sys.executable, "-c", PROBE], cwd=code, env=env, capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip()) * 1000)
    return times[1:]


def main() -> None:
    layer, label = layer_path()
    print(f"\n== cold import of each handler ({label}, median of {RUNS} fresh processes; goal <= 250 ms)")
    for function in FUNCTIONS:
        times = measure(function, layer)
        print(f"  {function:<19} median {statistics.median(times):6.1f} ms   min {min(times):6.1f}   max {max(times):6.1f}")


if __name__ == "__main__":
    main()

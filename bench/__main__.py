"""`make bench`: the figures the README reports. Benchmarks measure; they assert nothing.

Each part runs in a fresh interpreter, like a Lambda container that has never served anything: the parts build
per-process state that outlives them (the warm provider services and trackers cached per process, os.environ
values, moto's backends), and a part that reused another's would talk to a sandbox that has already stopped.
A part that fails does not stop the others; `make bench` then exits non-zero.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

PARTS = ["bench.cold_import", "bench.cold_answer", "bench.overhead", "bench.bulk", "bench.queue"]


def main(parts: list[str]) -> int:
    failed = []
    for part in parts:
        if importlib.util.find_spec(part) is None:  # e.g. the Wooxy bulk benchmark before the state machine landed
            continue
        if subprocess.run([sys.executable, "-m", part], check=False).returncode != 0:
            failed.append(part)
    if failed:
        print(f"\nmake bench: {', '.join(failed)} failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or PARTS))

"""`make bench`: the figures the README reports. Benchmarks measure; they assert nothing."""

from __future__ import annotations

import contextlib
import importlib

from bench import cold_import, overhead

SUITES = [cold_import.main, overhead.main]

if __name__ == "__main__":
    with contextlib.suppress(ModuleNotFoundError):  # the Wooxy bulk benchmark lands with the state machine
        SUITES.append(importlib.import_module("bench.bulk").main)
    for suite in SUITES:
        suite()

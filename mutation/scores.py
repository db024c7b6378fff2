"""Per-file mutation scores from a finished `mutmut run` (the `.meta` files it leaves under mutants/).

Run by `make mutate` from the staging directory; prints killed / total and the survivors' names.
Killed counts kills and timeouts (the tests noticed); total counts every mutant, including those no
selected test reaches ("no tests"), so an untested function lowers the score instead of hiding.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

# mutmut's exit-code conventions (mutmut/stats.py): 1 and 3 killed, 0 survived, 5/33 no tests, timeouts.
KILLED = {1, 3, 24, -24, 36, 37, 152, 255}
NO_TESTS = {5, 33}


def main(root: Path) -> int:
    metas = sorted((root / "mutants").rglob("*.py.meta"))
    if not metas:
        print("no mutmut results under", root / "mutants", file=sys.stderr)
        return 1
    total_killed = total = 0
    survivors: list[str] = []
    print(f"{'file':48} {'killed':>7} / {'total':<6} {'score':>6}  (survived, no tests)")
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        counts = Counter("killed" if c in KILLED else "no tests" if c in NO_TESTS else "survived" for c in codes.values())
        killed, n = counts["killed"], len(codes)
        survivors += sorted(name for name, c in codes.items() if c not in KILLED)
        name = str(meta.relative_to(root / "mutants"))[: -len(".meta")].removeprefix("src/")
        print(f"{name:48} {killed:>7} / {n:<6} {100 * killed / n:5.1f} %  ({counts['survived']}, {counts['no tests']})")
        total_killed, total = total_killed + killed, total + n
    print(f"{'all':48} {total_killed:>7} / {total:<6} {100 * total_killed / total:5.1f} %")
    if survivors:
        print("\nnot killed (`mutmut show <name>` in build/mutate shows the change):")
        print("\n".join(f"  {s}" for s in survivors))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))

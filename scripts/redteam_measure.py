"""Grade a few case notebooks through one door of the engine and print what they earned.

    MEDMNIST_STANDIN=/work/main/.data/medmnist python scripts/redteam_measure.py warm|cold CASE.ipynb... [--json OUT]

Red-team helper (issue 10): per notebook, the item scores, whether the result is flagged for
review (`problem`), the sandbox notes, and the output of each failed or passed check when -v.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

# The venv's MEDMNIST_STANDIN hook (a .pth file) imports `autograder` at start-up through the
# editable install, which points at another checkout: drop it, and import this worktree's.
for _name in [n for n in sys.modules if n == "autograder" or n.startswith("autograder.")]:
    del sys.modules[_name]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder import engine  # noqa: E402
from tests.conftest import TEST_LIMITS  # noqa: E402


def main(argv: list[str]) -> int:
    door, *rest = argv
    verbose = "-v" in rest
    out = None
    if "--json" in rest:
        out = rest[rest.index("--json") + 1]
        rest = [r for r in rest if r not in ("--json", out)]
    paths = [Path(p) for p in rest if p != "-v"]
    notebooks = {p.stem: p.read_bytes() for p in paths}
    started = time.monotonic()
    assert Path(engine.__file__).resolve().is_relative_to(Path(__file__).resolve().parent.parent), engine.__file__
    results = engine.grade(notebooks, assignment="notebook10", limits=TEST_LIMITS, warm=(door == "warm"), workers=1)
    summary = {}
    for name, result in results.items():
        items = {k: s for k, (s, _) in result.item_scores().items()}
        summary[name] = {"door": door, "score": result.score, "items": items, "problem": result.problem,
                         "notes": result.notes, "internal_errors": result.internal_errors,
                         "tests": [[t.name, t.score, t.max_score, t.output] for t in result.tests],
                         "cells": {str(k): v for k, v in result.cells.items()}}
        print(f"== {name} [{door}] score {result.score}  items {items}")
        print(f"   problem: {result.problem!r}")
        for note in result.notes:
            print(f"   note: {note}")
        passed = [t.name.split(": ", 1)[1] for t in result.tests if t.score > 0]
        print(f"   passed {len(passed)}/{len(result.tests)}: {', '.join(passed)}")
        if verbose:
            for t in result.tests:
                if t.score < t.max_score:
                    print(f"   FAIL {t.name}: {t.output[:200]}")
            for index, cell in sorted(result.cells.items()):
                text = (cell.get("output") or "")[:400]
                err = cell.get("error")
                print(f"   cell {index} {cell.get('status')}: {err and (err.get('type'), err.get('message', '')[:200])} {text!r}")
    print(f"({time.monotonic() - started:.1f} s)")
    if out:
        Path(out).write_text(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Grade case notebooks through one door of the engine; print scores, review flag and leaks.

    PYTHONPATH=. MEDMNIST_STANDIN=/work/main/.data/medmnist python scripts/redteam2_measure.py warm|cold CASE.ipynb... [--json OUT] [-v]

Red team, round 2. Per notebook: item scores, `result.problem` (the review flag), notes, and any
hidden configuration (the forms tests/test_integrity_leaks.py looks for) found in what the student
sees: each check's message, each cell's output and error, and Gradescope's top-level output
(results.summary_text, which includes "Needs review: <reasons>").
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

for _name in [n for n in sys.modules if n == "autograder" or n.startswith("autograder.")]:
    del sys.modules[_name]
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder import engine, results  # noqa: E402
from tests.conftest import TEST_LIMITS  # noqa: E402
from tests.test_integrity_leaks import HIDDEN_FORMS, _shown  # noqa: E402


def leaks(result: engine.Result) -> list[str]:
    texts = _shown(result) + [("gradescope output", results.summary_text(result))]
    return sorted({f"{where}: {form!r}" for where, text in texts for form in HIDDEN_FORMS if form in text})


def main(argv: list[str]) -> int:
    door, *rest = argv
    verbose = "-v" in rest
    out = None
    if "--json" in rest:
        out = rest[rest.index("--json") + 1]
        rest = [r for r in rest if r not in ("--json", out)]
    paths = [Path(p) for p in rest if p != "-v"]
    assert Path(engine.__file__).resolve().is_relative_to(ROOT), engine.__file__
    summary = {}
    for path in paths:  # one at a time: the machine is small and shared
        started = time.monotonic()
        result = engine.grade({path.stem: path.read_bytes()}, assignment="notebook10", limits=TEST_LIMITS, warm=(door == "warm"),
                              workers=1)[path.stem]
        items = {k: s for k, (s, _) in result.item_scores().items()}
        found = leaks(result)
        summary[path.stem] = {"door": door, "score": result.score, "items": items, "review": bool(result.problem),
                              "problem": result.problem, "notes": result.notes, "leaks": found,
                              "seconds": round(time.monotonic() - started, 1),
                              "internal_errors": result.internal_errors}
        print(f"== {path.stem} [{door}] score {result.score}  items {items}  ({time.monotonic() - started:.1f} s)")
        print(f"   review: {bool(result.problem)}  {result.problem!r}"[:1500])
        for note in result.notes:
            print(f"   note: {note}"[:400])
        if found:
            print(f"   LEAKS ({len(found)}): {found[:12]}")
        if verbose:
            for t in result.tests:
                if t.score < t.max_score:
                    print(f"   FAIL {t.name}: {t.output[:220]}")
            for index, cell in sorted(result.cells.items()):
                err = cell.get("error")
                print(f"   cell {index} {cell.get('status')}: {err and (err.get('type'), str(err.get('message', ''))[:160])}"
                      f" {(cell.get('output') or '')[:300]!r}")
    if out:
        Path(out).write_text(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

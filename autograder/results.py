"""Writing results: Gradescope's results.json, and the text shown in a grade cell."""

from __future__ import annotations

import json
from pathlib import Path

from autograder.engine import Result, TestResult

PASS, FAIL = "PASS", "FAIL"
STUDENT_REVIEW_NOTE = "Your instructor will also look at this submission before the grade is final."
TIMED_OUT = ("This cell ran longer than {seconds:g} s and was stopped{where}; the cells after it ran without what it "
             "would have made.")
HUNG = ("This cell kept Python busy past the time limit of the whole notebook and could not be stopped, so the "
        "notebook was graded again without running it; the cells after it ran without what it would have made.")


SETUP_STOPPED = ("{label} stopped with {what}{where}. Every cell after it ran without what the rest of that cell "
                 "would have made, so checks of any item can fail only because of this one line: fix it first.")


def setup_stopped_text(result: Result) -> str | None:
    """A plain sentence about a setup (or other non-exercise) cell that stopped with an error."""
    cell = result.setup_stopped
    if not cell:
        return None
    what = f"{cell['type']}: {cell['message']}" if cell.get("message") else str(cell.get("type"))
    where = f" at line {cell['line']} (`{str(cell['code']).strip()[:120]}`)" if cell.get("code") else ""
    label = str(cell["label"])
    return SETUP_STOPPED.format(label=label[:1].upper() + label[1:], what=what, where=where)


def gradescope(result: Result, isolation: str | None = None) -> dict:
    """Gradescope's autograder results format (top-level score/execution_time, tests[]).
    `isolation`: how the submission was isolated, recorded in extra_data where the caller knows."""
    data = {
        "score": result.score,
        "max_score": result.max_score,
        "execution_time": round(result.execution_time, 3),
        "visibility": "visible",
        "output": summary_text(result),
        "output_format": "text",  # the summary's columns are aligned with spaces
        # the checks' messages put code in backticks
        "tests": [{"name": t.name, "score": round(t.score, 4), "max_score": round(t.max_score, 4),
                   "status": "passed" if t.score >= t.max_score else "failed", "output": t.output,
                   "output_format": "md", "visibility": t.visibility} for t in result.tests],
        "extra_data": {"seed": result.seed, "items": {k: {"score": s, "max_score": m}
                                                      for k, (s, m) in result.item_scores().items()},
                       "notes": result.notes, "needs_review": result.problem, "review_reasons": result.review,
                       "timed_out": result.timed_out, "setup_stopped": result.setup_stopped,
                       "broken": result.broken,
                       "submission_sha256": result.submission_sha256, "peak_memory_bytes": result.peak_memory,
                       "sandbox_seconds": result.sandbox_seconds, "settings": result.settings},
    }
    if isolation is not None:
        data["extra_data"]["isolation"] = isolation
    return data


def write_gradescope(result: Result, path: Path) -> None:
    path.write_text(json.dumps(gradescope(result), indent=2) + "\n")


def summary_text(result: Result) -> str:
    lines = [f"Score: {result.score:g} / {result.max_score:g} (seed {result.seed})"]
    for item, (score, max_score) in result.item_scores().items():
        lines.append(f"  {item:<24} {score:5.2f} / {max_score:g}")
    for cell in result.timed_out:
        lines.append(f"{cell['label'][0].upper()}{cell['label'][1:]}: {timed_out_text(cell)}")
    if setup_stopped_text(result) and result.score < result.max_score:
        lines.append(setup_stopped_text(result))
    if result.problem:  # the reasons are for the instructor (extra_data, gradebook, report), not this text
        lines.append(STUDENT_REVIEW_NOTE)
    return "\n".join(lines)


def cell_report(result: Result, item: str) -> tuple[str, float, float]:
    """What a grade cell shows: one line per check, and the item's score."""
    tests: list[TestResult] = [t for t in result.tests if t.item == item]
    score, max_score = result.item_scores()[item]
    lines = [f"{item}: {score:g} of {max_score:g} points"]
    for t in tests:
        lines.append(f"  [{PASS if t.score >= t.max_score else FAIL}] {t.name.split(': ', 1)[-1]}"
                     + ("" if t.score >= t.max_score else f"\n      {t.output}"))
    return "\n".join(lines) + "\n", score, max_score


def timed_out_text(cell: dict) -> str:
    """What the student is told about a cell the time limit stopped: a plain sentence, with the
    student's own line where it was stopped, and nothing of the grader's."""
    if cell.get("hung"):
        return HUNG
    line, code = cell.get("line"), cell.get("code")
    where = f" at line {line}: `{code.strip()[:120]}`" if isinstance(line, int) and isinstance(code, str) else ""
    return TIMED_OUT.format(seconds=cell["seconds"], where=where)


def item_of_cell(result: Result, grade_id: str) -> str | None:
    """The item whose points the test cell `grade_id` holds, in the result's assignment."""
    return next((k for k, c in result.items.items() if c == grade_id), None)

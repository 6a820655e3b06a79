"""Grades the accuracy cases (cases_accuracy.py) with the current grader and writes ACCURACY.md.

    PYTHONPATH=. .venv/bin/python -m tests.submissions.accuracy_report            # grade, then write
    PYTHONPATH=. .venv/bin/python -m tests.submissions.accuracy_report --render   # rewrite from the saved JSON

It grades in batches (engine.grade with the test suite's limits, warm zygotes, two workers), keeps
the raw outcome in /tmp/accuracy_measured.json (--raw to choose; not committed) and renders
the table: each case's fair scores (from the case list), what the grader gave, and the messages of
the failing checks where they differ.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tests.submissions.case import ITEM_MAX
from tests.submissions.cases_accuracy import CASES, MESSAGES, message_problems

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "ACCURACY.md"
RAW = Path("/tmp/accuracy_measured.json")
NO_MESSAGE = "no failing check in the item carries a message"
SHORT = {"residual_block_shapes": "shapes", "shortcut_projection": "shortcut", "resnet18_adaptation": "resnet",
         "device_placement": "device"}
# Cases whose outcome depends on the time limits: graded once more with the production limits
# (sandbox.Limits(): 30 s a cell, 180 s a submission).
DEFAULT_LIMITS = ["correct/correct_torch_compile_demo_block_success_score_full.ipynb",
                  "correct/correct_torch_compile_model_success_score_full.ipynb"]


# The first run of this report (grader at 119c766, before issue 11's fixes), for comparison.
BEFORE = """## Before and after

The first run of this report, on the grader as it was when the catalogue was written (119c766):
**29 pass, 54 fail**; 13 of 32 correct variants lost points and 4 were marked for review; 18 of 51
bugs kept full marks in their own item; 20 bugs lost points in an item they do not belong to;
8 of the 20 checked messages named another mistake. What changed, by mechanism:

* **The simulated GPU** answers every CUDA query a notebook makes (device counts and properties,
  memory reports, `pin_memory`, compiled code); `cuda:1` is another GPU, so it fails. Sandbox
  guards no longer refuse what libraries do on a correct notebook's behalf (ctypes loads,
  DataLoader workers' signal handlers, `%matplotlib inline`, tqdm's monitor thread).
* **One observed forward, shared by the two block items** (`graders/blocks.py`): with seeded
  weights loaded into the student's own layers, the block's forward is run and observed; the
  shortcut is the chain of modules forward applies to x (an unused attribute is no part of it,
  a projection kept as two attributes is), the main path is judged as forward computes it
  against relu(reference main path + the student's own shortcut), so a main path written under
  other names, or kept and wrapped in a Sequential, is judged by what it does.
* **Each mistake charged in its own item.** A main-path mistake never costs the shortcut (the
  join is judged with the main path's convolutions zeroed: the main path is then one constant per
  channel, whatever its mistakes); a shortcut that makes the block raise does not cost the main
  path; a ResNet or data mistake that leaves no output is not a device mistake; a device mistake
  that stops a cell in one world is not a shape mistake (the other world's shapes are read).
* **What was never looked at is now checked**: gradients (detach on either path), the printed
  shape (the demo must print `output_tensor_2`'s own shape), fewer output than input channels and
  stride 3 (the projection conditions), a block built without its stride argument, the demo's
  blocks and inputs in both worlds, the fc's bias and ResNet's weightless layers (a removed
  max-pool), BatchNorm's settings (affine, running statistics).
* **Demo blocks in eval mode** are rerun in the mode the notebook left them in.
"""


def key(case) -> str:
    return f"{case.group}/{case.name}.ipynb"


def grade(batch_size: int) -> dict:
    from autograder import engine
    from tests.conftest import CASES as CASE_DIR, TEST_LIMITS

    names = [key(c) for c in CASES]
    raw: dict = {}
    for start in range(0, len(names), batch_size):
        batch = names[start:start + batch_size]
        began = time.perf_counter()
        results = engine.grade({n: (CASE_DIR / n).read_bytes() for n in batch}, assignment="notebook10", limits=TEST_LIMITS, warm=True,
                               workers=2)
        for name, result in results.items():
            raw[name] = {
                "items": {item: score for item, (score, _) in result.item_scores().items()},
                "review": result.review,
                "internal_errors": result.internal_errors,
                "tests": [{"name": t.name, "item": t.item, "score": t.score, "max": t.max_score, "output": t.output}
                          for t in result.tests],
                "notes": result.notes,
            }
        print(f"graded {start + len(batch)}/{len(names)} ({time.perf_counter() - began:.0f} s)", file=sys.stderr)
    from autograder.sandbox import Limits

    results = engine.grade({n: (CASE_DIR / n).read_bytes() for n in DEFAULT_LIMITS}, assignment="notebook10", limits=Limits(), warm=True,
                           workers=2)
    for name, result in results.items():
        raw["default-limits:" + name] = {
            "items": {item: score for item, (score, _) in result.item_scores().items()},
            "review": result.review, "internal_errors": result.internal_errors,
            "tests": [{"name": t.name, "item": t.item, "score": t.score, "max": t.max_score, "output": t.output}
                      for t in result.tests],
            "notes": result.notes}
    return raw


def fmt(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".")


def scores(d: dict) -> str:
    return " / ".join(fmt(d[item]) for item in ITEM_MAX)


def message_verdict(name: str, got: dict) -> tuple[bool, str] | None:
    case = name.split("/")[1].removesuffix(".ipynb")
    if case not in MESSAGES:
        return None
    failing = [t["output"] for t in got["tests"] if t["item"] == MESSAGES[case]["item"] and t["score"] < t["max"]]
    problems = message_problems(case, failing)
    return (not problems), "; ".join(problems) or "names the mistake"


def verdict(case, got: dict) -> dict:
    want = case.expected()
    items_ok = all(abs(got["items"][i] - want[i]) < 1e-6 for i in ITEM_MAX)
    review_ok = bool(got["review"]) == case.review
    msg = message_verdict(key(case), got)
    return {"items_ok": items_ok, "review_ok": review_ok, "msg": msg,
            "ok": items_ok and review_ok and not got["internal_errors"] and (msg is None or msg[0])}


def failing_lines(got: dict, items: list[str]) -> list[str]:
    out = []
    for t in got["tests"]:
        if t["item"] in items and t["score"] < t["max"]:
            out.append(f"  - `{t['name'].split(': ', 1)[1]}` ({fmt(t['score'])}/{fmt(t['max'])}): "
                       + t["output"].replace("\n", " ").replace("|", "\\|")[:600])
    return out


def render(raw: dict) -> str:
    rows, details = [], []
    correct_losing, correct_review, bugs_kept, wrong_item, msg_fail = [], [], [], [], []
    n_ok = 0
    for case in CASES:
        got = raw[key(case)]
        v = verdict(case, got)
        n_ok += v["ok"]
        want = case.expected()
        differs = [i for i in ITEM_MAX if abs(got["items"][i] - want[i]) >= 1e-6]
        flags = []
        if not v["items_ok"]:
            flags.append("scores")
        if not v["review_ok"]:
            flags.append("review")
        if v["msg"] is not None and not v["msg"][0]:
            flags.append("message")
        if got["internal_errors"]:
            flags.append("grader error")
        review = "yes" if got["review"] else "no"
        rows.append(f"| `{case.name}` | {scores(want)} | {scores(got['items'])} | {review} | "
                    f"{'pass' if v['ok'] else 'FAIL: ' + ', '.join(flags)} |")
        if case.group == "correct":
            if any(got["items"][i] < ITEM_MAX[i] - 1e-6 for i in ITEM_MAX):
                correct_losing.append(case.name)
            if got["review"]:
                correct_review.append(case.name)
        else:
            own = [i for i in ITEM_MAX if want[i] < ITEM_MAX[i] - 1e-6]
            kept = [i for i in own if got["items"][i] >= ITEM_MAX[i] - 1e-6]
            if kept:
                bugs_kept.append((case.name, kept))
            elsewhere = [i for i in ITEM_MAX if want[i] >= ITEM_MAX[i] - 1e-6 and got["items"][i] < ITEM_MAX[i] - 1e-6]
            if elsewhere:
                wrong_item.append((case.name, elsewhere))
        if v["msg"] is not None and not v["msg"][0]:
            msg_fail.append((case.name, v["msg"][1]))
        if not v["ok"]:
            lines = [f"### `{case.name}`", "", f"*Why:* {case.why}", "",
                     f"Expected {scores(want)}, measured {scores(got['items'])}"
                     + (f"; differs in {', '.join(SHORT[i] for i in differs)}" if differs else "") + "."]
            if not v["review_ok"]:
                lines.append(f"Marked for review: {'; '.join(got['review']) or 'no'} (expected "
                             f"{'yes' if case.review else 'no'}).")
            if v["msg"] is not None and not v["msg"][0]:
                lines.append(f"Message check ({SHORT[MESSAGES[case.name]['item']]}): {v['msg'][1]}.")
            if got["internal_errors"]:
                lines.append(f"Grader errors: {got['internal_errors']}")
            shown = sorted(set(differs) | ({MESSAGES[case.name]["item"]} if case.name in MESSAGES else set()),
                           key=list(ITEM_MAX).index)
            fl = failing_lines(got, shown)
            if fl:
                lines += ["", "Failing checks:"] + fl
            details.append("\n".join(lines) + "\n")
    correct = [c for c in CASES if c.group == "correct"]
    bugs = [c for c in CASES if c.group == "bugs"]
    named_wrong = [(n, why) for n, why in msg_fail if why != NO_MESSAGE]
    supplement = []
    for name in DEFAULT_LIMITS:
        got = raw.get("default-limits:" + name)
        if got:
            supplement.append(f"### `{name.split('/')[1].removesuffix('.ipynb')}` with 30 s a cell\n\n"
                              f"Measured {scores(got['items'])}; review: {'; '.join(got['review']) or 'no'}.\n")
            fl = failing_lines(got, list(ITEM_MAX))
            if fl:
                supplement[-1] += "\nFailing checks:\n" + "\n".join(fl) + "\n"
    out = [
        "# Accuracy of the grader: fair scores against measured ones",
        "",
        "The cases are in `tests/submissions/cases_accuracy.py` (its docstring states the policy the fair scores "
        "follow: each mistake is charged in its own item); they are built into `tests/submissions/{correct,bugs}/` "
        "and `expected.json` like every other case, and `tests/test_submissions.py` fails on any FAIL below. This "
        "file is written by `python -m tests.submissions.accuracy_report` (grading with the test suite's limits: "
        "10 s a cell, 60 s a submission; two warm workers) on a machine **without a GPU**: the world with a GPU "
        "is the simulated one.",
        "",
        "Scores are written shapes / shortcut / resnet / device (out of 3 / 3 / 2 / 2). *Review*: whether the "
        "grader marked the submission for a person (every case here expects no). A case passes when all four "
        "scores and the review flag match and, for the cases in `MESSAGES`, the failing checks' messages name "
        "the mistake.",
        "",
        "## Summary",
        "",
        f"* {len(CASES)} cases: {len(correct)} correct variants, {len(bugs)} bugs; "
        f"**{n_ok} pass, {len(CASES) - n_ok} fail**.",
        f"* Correct variants that lose points: **{len(correct_losing)} of {len(correct)}**"
        + (": " + ", ".join(f"`{n}`" for n in correct_losing) if correct_losing else "") + ".",
        f"* Correct variants marked for review: **{len(correct_review)}**"
        + (": " + ", ".join(f"`{n}`" for n in correct_review) if correct_review else "") + ".",
        f"* Bugs that keep full marks in an item they belong to: **{len(bugs_kept)} of {len(bugs)}**"
        + (": " + ", ".join(f"`{n}` ({', '.join(SHORT[i] for i in items)})" for n, items in bugs_kept)
           if bugs_kept else "") + ".",
        f"* Bugs that lose points in an item they do not belong to: **{len(wrong_item)}**"
        + (": " + ", ".join(f"`{n}` ({', '.join(SHORT[i] for i in items)})" for n, items in wrong_item)
           if wrong_item else "") + ".",
        f"* Messages checked: {len(MESSAGES)}. Failing checks whose messages name a different mistake (or none): "
        f"**{len(named_wrong)}**" + (": " + "; ".join(f"`{n}`: {why}" for n, why in named_wrong) if named_wrong else "")
        + f". No failing check at all in the item (the bug keeps full marks there): {len(msg_fail) - len(named_wrong)}.",
        "",
        BEFORE,
        "## Table",
        "",
        "| Case | Fair | Measured | Review | Result |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "## Mismatches",
        "",
        *details,
        "## torch.compile under the production limits",
        "",
        "The two torch.compile cases, graded again with the production limits (30 s a cell, 180 s a "
        "submission), where compiling has the time it needs on a slow machine:",
        "",
        *supplement,
    ]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--render", action="store_true", help="rewrite ACCURACY.md from the saved JSON")
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--raw", type=Path, default=RAW)
    args = parser.parse_args()
    if args.render:
        raw = json.loads(args.raw.read_text())
    else:
        raw = grade(args.batch)
        args.raw.write_text(json.dumps(raw, indent=1))
    REPORT.write_text(render(raw))
    print(f"wrote {REPORT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

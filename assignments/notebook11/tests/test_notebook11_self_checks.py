"""Notebook 11's visible self-checks say what the hidden graders say for the same notebook, say
nothing to a correct one, and never crash.

Each graded notebook of the catalogue (the session's `graded` fixture, conftest.py) and the blank
release (graded here, in seconds) runs as a student runs it, on the fast path of
tests/student_run.py: its cells in order in one namespace, in a fresh process forked from one that
has imported torch, two at a time. The cells after the last
self-check (training, plots) are left out: no self-check reads them. About 35 s on two cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from autograder.course import COURSE
from tests import student_run

sys.path.insert(0, str(Path(__file__).resolve().parent / "submissions"))

import build as catalogue  # noqa: E402  (submissions/build.py)

from assignments.notebook11 import EXAMPLE_CLASS  # noqa: E402

RELEASE = COURSE.release("notebook11") / "notebook11.ipynb"
NOTEBOOKS = [*catalogue.FAST, "release"]  # the release: the blanks unfilled, every name missing


def path_of(name: str) -> Path:
    return RELEASE if name == "release" else catalogue.path_of(name)

CHECKS = {"test_double_conv", "test_down_up_shapes", "test_unet_output", "test_device_placement"}
ITEM_OF = {"double_conv": "test_double_conv", "down_up": "test_down_up_shapes", "unet_output": "test_unet_output",
           "device_placement": "test_device_placement"}


def up_to_the_last_self_check(path: Path, folder: Path) -> Path:
    nb = nbformat.read(path, as_version=4)
    last = max(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") in CHECKS)
    nb.cells = nb.cells[:last + 1]
    out = folder / path.name
    nbformat.write(nb, out)
    return out


@pytest.fixture(scope="module")
def as_students(tmp_path_factory):
    """Each graded notebook's self-check cells: check -> None, or (exception type, message)."""
    folder = tmp_path_factory.mktemp("nb11_as_students")
    paths = {name: up_to_the_last_self_check(path_of(name), folder) for name in NOTEBOOKS}
    found = student_run.run_all(list(paths.values()), COURSE.release("notebook11"))
    return {name: found[path] for name, path in paths.items()}


@pytest.fixture(scope="module")
def verdicts(graded):
    """The grader's results: the catalogue's from the session's fixture, the release's graded here."""
    from autograder import engine, sandbox

    release = engine.grade({"release": nbformat.read(RELEASE, as_version=4)}, assignment="notebook11",
                           limits=sandbox.Limits(cell_seconds=30, submission_seconds=120), workers=1)
    return {**graded, **release}


def grader_says(result) -> set[str]:
    return {t.output for t in result.tests if t.score < t.max_score}


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_self_check_never_crashes_and_says_only_what_the_grader_says(verdicts, as_students, name):
    outcomes, says = as_students[name], grader_says(verdicts[name])
    assert set(outcomes) == CHECKS, f"not every self-check ran: {outcomes}"
    for check, outcome in outcomes.items():
        if outcome is None:
            continue
        kind, message = outcome
        assert kind == "AssertionError", f"the self-check {check} crashed with {kind}: {message}"
        assert message in says, f"the self-check {check} says {message!r}; the grader says {sorted(says)}"
    if verdicts[name].score == verdicts[name].max_score:
        failed = {check: o for check, o in outcomes.items() if o is not None}
        assert not failed, f"a notebook the grader gives full marks fails a visible self-check: {failed}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_mistake_the_grader_finds_in_a_visible_case_fails_its_self_check(verdicts, as_students, name):
    """Where the grader faults a case the self-check also tries (not a hidden one, and on this
    machine, not in the run with the answer of torch.cuda.is_available() flipped, except for the
    device choice, which the self-check tries both ways), the item's self-check fails."""
    visible = {t.item for t in verdicts[name].tests if t.score < t.max_score and "hidden" not in t.name
               and ("counterfactual" not in t.name or t.name.endswith("choice[counterfactual]"))}
    silent = sorted(item for item in visible if as_students[name][ITEM_OF[item]] is None)
    assert not silent, f"the grader faults {silent} in a visible case, and their self-checks pass"


@pytest.mark.slow
def test_the_demo_class_totals_are_what_the_catalogue_expects_and_the_grader_gives(verdicts):
    kinds = [Path(path).name.split("_")[0] for path, _ in EXAMPLE_CLASS.values()]
    assert sorted(kinds) == ["bug", "correct", "hostile", "notebook11.ipynb"], kinds
    for student, (path, total) in EXAMPLE_CLASS.items():
        name = "release" if path == RELEASE.relative_to(COURSE.root).as_posix() else Path(path).stem
        assert (COURSE.root / path).is_file() and name in verdicts, student
        if name != "release":
            assert total == sum(catalogue.CASES[name][1].values()), student
        assert verdicts[name].score == total, f"{student}: the grader gives {verdicts[name].score}, not {total}"

"""Students' visible self-checks say what the hidden graders say, for the same mistake, say
nothing to a correct notebook, and never crash.

Every correct variant and every mistake of the catalogue runs as a student runs it (cells in order
in one namespace, each in a fresh process forked from one that imported torch: tests/student_run.py,
about two minutes): a self-check may only stop with an AssertionError whose message is one the
grader gives the same notebook. A fixed subset (one notebook per kind of verdict) also runs in real
Jupyter kernels (about a minute and a half); `make self-checks` runs the whole catalogue in real
kernels.
"""

import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.assignment import tool_env
from autograder.course import COURSE
from tests import student_run
from tests.conftest import CASES, EXPECTED

# In real Jupyter kernels: one notebook per kind of self-check verdict, as the fast path's witness
# (a crash turned into the main-path hint, the shortcut's kernel,
# the join, the ResNet's fc, hard-coded "cpu" caught by rerunning the device lines, a batch left on the
# CPU, a setup typo named through IPython's post_run_cell, the blank release's NameErrors, shell and
# line magics), and the solution (every variant runs as a student would on the fast path too, and all of them in
# real kernels with `make self-checks`).
SUBSET = [
    "bugs/bug_no_padding_score_partial.ipynb",
    "bugs/bug_shortcut_conv_3x3_score_partial.ipynb",
    "bugs/bug_relu_before_add_score_partial.ipynb",
    "bugs/bug_fc_not_replaced_score_partial.ipynb",
    "bugs/bug_device_hardcoded_cpu_score_partial.ipynb",
    "bugs/bug_batch_not_moved_to_device_score_partial.ipynb",
    "bugs/bug_setup_functional_typo_score_partial.ipynb",
    "bugs/bug_blank_release_as_received_score_zero.ipynb",
    "correct/correct_solution_as_released_success_score_full.ipynb",
    "correct/correct_pip_install_left_in_setup_success_score_full.ipynb",
]
EVERY = [name for name in EXPECTED if name.startswith(("bugs/", "correct/"))]
ALL = bool(os.environ.get("NB10_ALL_SELF_CHECKS"))  # make self-checks
NOTEBOOKS = EVERY if ALL else SUBSET
# The fast path: every correct and buggy notebook with `make self-checks`; in the suite, a fixed half (every
# other one in the catalogue's order) and the kernel subset, to keep `make test` within its half hour.
AS_STUDENTS = EVERY if ALL else sorted(set(EVERY[::2]) | set(SUBSET), key=EVERY.index)


def visible_check_messages(path: Path) -> list[str]:
    """Run the notebook as a student would; the assertion messages of its self-check cells."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as scratch:  # what the notebook writes stays there
        shutil.copytree(COURSE.release(), scratch, dirs_exist_ok=True)
        client = NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=120,
                                resources={"metadata": {"path": scratch}})
        client.km = client.create_kernel_manager()
        client.execute(env=tool_env())
    return [(o.ename, o.evalue) for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
            for o in c.outputs if o.output_type == "error"]


def test_the_subset_is_in_the_catalogue():
    assert set(SUBSET) <= set(EVERY)


@pytest.fixture(scope="module")
def graded(graded_catalogue):
    return graded_catalogue


@pytest.fixture(scope="module")
def as_students():
    """The correct and buggy notebooks of the catalogue (AS_STUDENTS), run as a student runs them (fast path)."""
    found = student_run.run_all([CASES / name for name in AS_STUDENTS], COURSE.release())
    return {name: found[CASES / name] for name in AS_STUDENTS}


def _grader_says(result) -> set[str]:
    return {t.output for t in result.tests if t.score < t.max_score}


@pytest.mark.slow
@pytest.mark.parametrize("name", AS_STUDENTS)
def test_a_self_check_never_crashes_and_says_only_what_the_grader_says(graded, as_students, name):
    outcomes = as_students[name]
    assert set(outcomes) == {"test_residual_block_shapes", "test_shortcut_projection", "test_resnet18_adaptation",
                             "test_device_placement"}, f"not every self-check ran: {sorted(outcomes)}"
    grader_says = _grader_says(graded[name])
    for check, outcome in outcomes.items():
        if outcome is None:
            continue
        kind, message = outcome
        assert kind == "AssertionError", f"the self-check {check} crashed with {kind}: {message}"
        assert message in grader_says, f"the self-check {check} says {message!r}; the grader says {sorted(grader_says)}"
    if graded[name].score == graded[name].max_score:
        failed = {check: o for check, o in outcomes.items() if o is not None}
        assert not failed, f"a notebook the grader gives full marks fails a visible self-check: {failed}"


@pytest.fixture(scope="module")
def visible():
    """Every notebook run as a student would, two kernels at a time."""
    with ProcessPoolExecutor(2) as pool:
        return dict(zip(NOTEBOOKS, pool.map(visible_check_messages, [CASES / n for n in NOTEBOOKS])))


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_visible_self_check_says_what_the_grader_says(graded, visible, name):
    messages = visible[name]
    grader_says = _grader_says(graded[name])
    for kind, message in messages:
        assert kind == "AssertionError", f"a self-check crashed with {kind}: {message}"
        assert message in grader_says, f"the self-check says {message!r}; the grader says {sorted(grader_says)}"
    if graded[name].score == graded[name].max_score:
        assert messages == [], "a notebook the grader gives full marks fails a visible self-check"

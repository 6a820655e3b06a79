"""Students' visible self-checks say what the hidden graders say, for the same mistake."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograder import engine
from autograder.assignment import tool_env
from autograder.course import COURSE
from tests.conftest import CASES, EXPECTED, TEST_LIMITS

# Mistakes a student can make with the release's blanks, plus a correct notebook (no message).
MISTAKES = [name for name in EXPECTED if name.startswith("bugs/")] + [
    "correct/correct_solution_as_released_success_score_full.ipynb"]


def visible_check_messages(path: Path) -> list[str]:
    """Run the notebook as a student would; the assertion messages of its self-check cells."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=120,
                            resources={"metadata": {"path": str(COURSE.release())}})
    client.km = client.create_kernel_manager()
    client.execute(env=tool_env())
    return [o.evalue for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
            for o in c.outputs if o.output_type == "error" and o.ename == "AssertionError"]


@pytest.fixture(scope="module")
def graded():
    return engine.grade({name: (CASES / name).read_bytes() for name in MISTAKES}, limits=TEST_LIMITS,
                        warm=True, workers=2)


@pytest.mark.slow
@pytest.mark.parametrize("name", MISTAKES)
def test_a_visible_self_check_says_what_the_grader_says(graded, name):
    messages = visible_check_messages(CASES / name)
    grader_says = {t.output for t in graded[name].tests if t.score < t.max_score}
    for message in messages:
        assert message in grader_says, f"the self-check says {message!r}; the grader says {sorted(grader_says)}"
    if graded[name].score == graded[name].max_score:
        assert messages == []

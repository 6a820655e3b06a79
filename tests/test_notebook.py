"""The assignment itself: the source runs, the release has its blanks and nothing else."""

import ast
import re
import time

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient

from autograder.assignment import blank_sites, tool_env, validate
from autograder.blanks import MARKER, strip_markers
from autograder.course import COURSE
from assignments.notebook10 import NOTEBOOK

# The seed's 13 blank sites, by cell and the answer(s) they hide.
SEED_SITES = [
    ("setup", ("functional",)),
    ("residual_block", ("3", "stride", "1")),
    ("residual_block", ("out_channels",)),
    ("residual_block", ("out_channels", "out_channels")),
    ("residual_block", ("1",)),
    ("residual_block", ("shortcut",)),
    ("residual_block", ("relu",)),
    ("residual_block_demo", ("2",)),
    ("residual_block_demo", ("output_tensor_2.shape",)),
    ("resnet18_adaptation", ("1",)),
    ("resnet18_adaptation", ("2",)),
    ("resnet18_adaptation", ("4",)),
    ("resnet18_adaptation", ("device",)),
]
# the course's packages, and what the self-checks' helper cell uses besides: Python's own modules and
# IPython (every Jupyter kernel has it)
ALLOWED_IMPORTS = {"torch", "torchvision", "medmnist", "numpy", "matplotlib", "re", "sys", "traceback", "ast",
                   "IPython"}
PRINTED = [
    "Output shape (same dim): torch.Size([4, 64, 32, 32])",
    "Output shape (changed dim): torch.Size([4, 128, 16, 16])",
    "Input shape: torch.Size([4, 1, 28, 28])",
    "Output shape: torch.Size([4, 2])",
]


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def stdout_of(nb):
    return "".join(o.get("text", "") for c in code_cells(nb) for o in c.outputs if o.output_type == "stream")


def test_the_source_marks_the_seed_s_thirteen_blank_sites():
    sites = blank_sites(COURSE.source() / NOTEBOOK)
    assert [(s.grade_id, s.answers) for s in sites] == SEED_SITES


@pytest.mark.slow
def test_the_source_notebook_runs_offline_on_a_cpu_and_prints_the_four_shapes(source_nb):
    nb = nbformat.from_dict(source_nb)
    started = time.perf_counter()
    client = NotebookClient(nb, kernel_name="python3", timeout=120,
                            resources={"metadata": {"path": str(COURSE.source())}})
    client.km = client.create_kernel_manager()
    client.execute(env=tool_env())
    elapsed = time.perf_counter() - started
    out = stdout_of(nb)
    for line in PRINTED:
        assert line in out
    assert "Using device: cpu" in out or "Using device: cuda" in out
    assert not [o for c in code_cells(nb) for o in c.outputs if o.get("name") == "stderr"]
    assert elapsed < 60, f"the source notebook took {elapsed:.0f} s; it must run in under a minute"


def test_every_blank_site_is_in_the_release_as_the_student_line(source_nb, release_nb):
    released = {grade_id(c): c.source.split("\n") for c in code_cells(release_nb)}
    for cell in code_cells(source_nb):
        for line in cell.source.split("\n"):
            if MARKER not in line:
                continue
            solution_line = strip_markers(line)
            assert solution_line not in released[grade_id(cell)], f"answer left in the release: {solution_line!r}"
            fragment = line.split(MARKER, 1)[1].strip()
            assert any(fragment in rl for rl in released[grade_id(cell)]), f"blank missing: {fragment!r}"


def test_each_exercise_cell_of_the_release_holds_exactly_its_blanks(release_nb):
    expected = {}
    for cell_id, answers in SEED_SITES:
        expected[cell_id] = expected.get(cell_id, 0) + len(answers)
    found = {grade_id(c): len(re.findall(r"(?<![`'\"])___(?![`'\"])", c.source)) for c in code_cells(release_nb)
             if c.metadata.get("nbgrader", {}).get("solution")}
    assert found == expected


def test_no_code_cell_of_the_release_has_a_syntax_error(release_nb):
    for cell in code_cells(release_nb):
        ast.parse(TransformerManager().transform_cell(cell.source))


def test_the_release_holds_no_solution_markers_hidden_tests_or_outputs(release_nb):
    for cell in release_nb.cells:
        assert MARKER not in cell.source
        assert "BEGIN HIDDEN TESTS" not in cell.source and "BEGIN SOLUTION" not in cell.source
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_the_release_imports_only_the_student_s_packages(release_nb):
    imported = set()
    for cell in code_cells(release_nb):
        for node in ast.walk(ast.parse(TransformerManager().transform_cell(cell.source))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
    assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS


def test_nothing_in_the_notebooks_points_outside_the_machine(source_nb, release_nb):
    for nb in (source_nb, release_nb):
        for cell in nb.cells:
            assert "http://" not in cell.source and "https://" not in cell.source
            assert "!pip" not in cell.source.replace("`!pip install medmnist`", "")


@pytest.mark.slow
def test_the_committed_release_is_what_nbgrader_generates_from_the_source(regenerated):
    fresh = regenerated.release()
    committed = COURSE.release()
    assert sorted(p.name for p in fresh.iterdir()) == sorted(p.name for p in committed.iterdir())
    for path in fresh.iterdir():
        assert path.read_bytes() == (committed / path.name).read_bytes(), (
            f"release/notebook10/{path.name} is stale: run `make release` and commit it")


def _normalised(nb):
    """Sources and the text each cell printed; image bytes and stream chunking are left out."""
    return [(cell.cell_type, cell.source,
             "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", [])))
            for cell in nb.cells]


@pytest.mark.slow
def test_the_committed_solutions_are_current_and_executed(regenerated):
    fresh = nbformat.read(regenerated.solutions() / NOTEBOOK, as_version=4)
    committed = nbformat.read(COURSE.solutions() / NOTEBOOK, as_version=4)
    assert _normalised(fresh) == _normalised(committed), "solutions/ is stale: run `make solutions` and commit it"
    out = stdout_of(committed)
    for line in PRINTED:
        assert line in out
    assert all(MARKER not in c.source for c in committed.cells)


@pytest.mark.slow
def test_nbgrader_validate_passes_the_solution_and_fails_the_blank_release():
    assert validate(COURSE.source() / NOTEBOOK).ok
    release = validate(COURSE.release() / NOTEBOOK)
    assert not release.ok
    assert "NameError" in release.output or "ModuleNotFoundError" in release.output


@pytest.mark.slow
def test_each_exercise_cell_of_the_release_stops_at_a_blank_with_a_clear_error():
    from autograder.demo import run_release_cells

    outcomes = dict(run_release_cells())
    assert outcomes == {
        "setup": "ModuleNotFoundError: No module named 'torch.nn.___'",
        # a class body only runs when the class is used
        "residual_block": "ran: a definition only; its blanks stop the first cell that uses it",
        "residual_block_demo": "NameError: name '___' is not defined",
        "resnet18_adaptation": "NameError: name '___' is not defined",
    }

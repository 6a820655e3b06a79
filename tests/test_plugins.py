"""Assignments as plug-ins (autograder/plugins.py): found by folder, and an assignment without one
is refused by name instead of being graded with another assignment's graders."""

import shutil

import nbformat
import pytest

from autograder import cli, plugins
from autograder.course import COURSE, Course


def _course_with_an_ungraded_assignment(root) -> Course:
    shutil.copy2(COURSE.config_file, root / "nbgrader_config.py")
    course = Course(root)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    for folder in (course.source("lab99"), course.submitted("alice", "lab99")):
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "lab99.ipynb")
    return course


def test_an_assignment_without_a_plugin_is_refused_with_the_ones_that_have_graders(tmp_path, capsys):
    course = _course_with_an_ungraded_assignment(tmp_path)
    assert cli.main(["autograde", "lab99", "--course", str(course.root)]) == 2
    said = capsys.readouterr().err
    assert "no hidden graders for assignment 'lab99'" in said and "Assignments with graders: notebook10" in said
    assert not course.gradebook.exists()  # nothing was recorded
    assert cli.main(["grade", str(course.submitted("alice", "lab99") / "lab99.ipynb"), "--course", str(course.root),
                     "--assignment", "lab99"]) == 2
    assert "no hidden graders for assignment 'lab99'" in capsys.readouterr().err


def test_a_plugin_in_the_course_folder_is_found_beside_this_repositorys(tmp_path):
    folder = tmp_path / "assignments" / "lab98"
    (folder / "graders").mkdir(parents=True)
    (folder / "__init__.py").write_text('ITEMS = {"parts": "test_parts"}\nGRADERS = ("parts",)\n')
    (folder / "graders" / "parts.py").write_text('CELL = "test_parts"\n')
    course = Course(tmp_path)
    assert {"lab98", "notebook10"} <= set(plugins.known(course)) and "lab98" not in plugins.known()
    plugin = plugins.get("lab98", course)
    assert (plugin.notebook, plugin.items, plugin.item_of_cell("test_parts")) == ("lab98.ipynb", {"parts": "test_parts"},
                                                                                 "parts")
    assert [m.CELL for m in plugin.grader_modules()] == ["test_parts"]
    with pytest.raises(plugins.NoPlugin, match="name the assignment"):
        plugins.only(course)


def test_a_plugin_that_names_no_items_is_refused_with_what_it_must_set(tmp_path):
    folder = tmp_path / "assignments" / "lab97"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    with pytest.raises(plugins.NoPlugin, match="must set ITEMS"):
        plugins.get("lab97", Course(tmp_path))


TOY_PROBES = '''"""A toy assignment's sandbox side: reads the notebook's x, with a seeded offset."""
from ...probe import field
from . import seeded

PREPARE = {"read_x": lambda spec: {"offset": seeded.offset(spec["seed"])}}


def read_x(spec, pre, ctx, blobs, cls):
    x = field(ctx["ns"], "x")
    return {"x": x if type(x) is int else None, "offset": pre["offset"], "mode": ctx["mode"]}


OPS = {"read_x": read_x}
'''
TOY_GRADER = '''from autograder.graders import evidence, fail, points

CELL = "test_x"
WORLDS = ["real"]


def probes(seed):
    return [{"id": "x", "op": "read_x", "seed": seed}]


@points(1)
def test_x_is_the_answer(submission):
    from assignments.lab96 import seeded

    found = evidence(submission, "x")
    if found["offset"] != seeded.offset(submission.seed):
        fail("the sandbox made another offset")
    if found["x"] != 42:
        fail(f"x should be 42, not {found['x']}")
'''


def _toy_course(root):
    """A course whose assignment lab96 has a plug-in with a sandbox side (probes.py, seeded.py)."""
    shutil.copy2(COURSE.config_file, root / "nbgrader_config.py")
    folder = root / "assignments" / "lab96"
    (folder / "graders").mkdir(parents=True)
    (folder / "__init__.py").write_text('ITEMS = {"x": "test_x"}\nGRADERS = ("answer",)\n'
                                        'SANDBOX = ("probes.py", "seeded.py")\n')
    (folder / "seeded.py").write_text("def offset(seed):\n    return seed % 7\n")
    (folder / "probes.py").write_text(TOY_PROBES)
    (folder / "graders" / "answer.py").write_text(TOY_GRADER)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 41 + 1", metadata={"nbgrader": {
            "grade_id": "answer", "solution": True, "grade": False, "locked": False, "schema_version": 3}}),
        nbformat.v4.new_code_cell("assert x == 42", metadata={"nbgrader": {
            "grade_id": "test_x", "solution": False, "grade": True, "locked": True, "points": 1,
            "schema_version": 3}})])
    course = Course(root)
    course.source("lab96").mkdir(parents=True)
    nbformat.write(nb, course.source("lab96") / "lab96.ipynb")
    return course, nb


@pytest.mark.slow
@pytest.mark.parametrize("warm", [pytest.param(False, id="fresh-sandbox"), pytest.param(True, id="forked-from-zygote")])
def test_an_assignments_own_sandbox_side_probes_run_privately_in_the_sandbox(tmp_path, monkeypatch, warm):
    from autograder import engine, sandbox
    from tests.conftest import TEST_LIMITS

    course, nb = _toy_course(tmp_path)
    wrong = nbformat.reads(nbformat.writes(nb), as_version=4)
    wrong.cells[0].source = "x = 41"
    monkeypatch.chdir(course.root)  # the sandbox's bundle takes the plug-ins of the course it runs in
    sandbox.bundle_dir.cache_clear()
    try:
        graded = engine.grade({"right": nbformat.writes(nb), "wrong": nbformat.writes(wrong)}, assignment="lab96",
                              course=course, limits=TEST_LIMITS, seed=12, warm=warm)
    finally:
        sandbox.bundle_dir.cache_clear()
    assert graded["right"].item_scores() == {"x": (1.0, 1.0)}, graded["right"].tests
    assert graded["wrong"].item_scores() == {"x": (0.0, 1.0)}
    assert graded["wrong"].tests[0].output == "x should be 42, not 41"
    assert graded["right"].problem is None, graded["right"].review


def test_a_notebooks_assignment_is_read_from_its_name_its_folder_or_its_test_cells(tmp_path):
    def notebook(path, grade_ids=()):
        path.parent.mkdir(parents=True, exist_ok=True)
        cells = [nbformat.v4.new_code_cell("", metadata={"nbgrader": {"grade_id": g}}) for g in grade_ids]
        nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
        return path

    unet_cells = plugins.get("notebook11").items.values()
    assert plugins.of_notebook(notebook(tmp_path / "notebook10-Copy1.ipynb")) == "notebook10"
    assert plugins.of_notebook(notebook(tmp_path / "alice" / "notebook11" / "mine.ipynb")) == "notebook11"
    assert plugins.of_notebook(notebook(tmp_path / "hw.ipynb", ["setup", *unet_cells])) == "notebook11"
    with pytest.raises(plugins.NoPlugin, match="name the assignment"):
        plugins.of_notebook(notebook(tmp_path / "blank.ipynb"))

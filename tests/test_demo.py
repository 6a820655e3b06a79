"""`make demo`'s example class: real catalogue notebooks, held to the catalogue's expectations."""

import json

import pytest

from autograder import demo
from autograder.course import COURSE


def test_every_example_student_is_a_notebook_of_the_repository():
    for assignment in demo.demo_assignments():
        for student, (path, _) in demo.example_class(assignment).items():
            assert (COURSE.root / path).is_file(), (assignment, student)


def test_the_demo_expects_what_the_catalogue_expects():
    """The totals the demo checks are the catalogue's (tests/submissions/expected.json), so a change of
    policy that the catalogue records cannot leave the demo failing on a working machine unnoticed."""
    catalogue = json.loads((COURSE.root / "tests/submissions/expected.json").read_text())
    students = demo.example_class("notebook10")
    for student, (path, total) in students.items():
        case = path.removeprefix("tests/submissions/")
        want = sum(catalogue[case]["expect"].values()) if case in catalogue else 0.0
        assert total == want, (student, path)
    totals = {student: total for student, (_, total) in students.items()}
    assert totals["ada"] == 10.0 and totals["dee"] == 10.0  # correct notebooks
    assert totals["eve"] == 0.0 and students["eve"][0].startswith("release/")  # the blank release
    assert 0 < totals["ben"] < 10 and 0 < totals["cy"] < 10  # a mistake, a hostile notebook


def test_each_assignment_with_graders_has_a_demo():
    assert demo.demo_assignments() == ["notebook10", "notebook11"]


# The first failures of bug_no_padding (the hidden-case crash comes first in its results) and of a correct notebook
NO_PADDING = {"tests": [
    {"name": "residual_block_shapes: test_residual_block_shapes_hidden_cases[hidden-1]", "score": 0.0, "max_score": 0.11,
     "output": "In a hidden case (the channels change at stride 1) the block raised RuntimeError."},
    {"name": "residual_block_shapes: test_residual_block_shapes_main_path[identity-block]", "score": 0.0, "max_score": 0.5,
     "output": "Main path of ResidualBlock(8, 8, stride=1) in train mode: conv1 needs padding=1, so that a 3x3 kernel "
               "keeps the size at stride 1."},
    {"name": "shortcut_projection: test_shortcut_projection_identity[identity-small]", "score": 0.5, "max_score": 0.5,
     "output": "passed"}]}


def test_the_class_table_says_what_a_student_got_wrong_by_its_root_cause():
    said = demo.what_went_wrong(NO_PADDING)
    assert "conv1 needs padding=1" in said and "raised" not in said and len(said) <= 100
    assert demo.what_went_wrong({"tests": NO_PADDING["tests"][2:]}) == "nothing: every check passed"
    assert "no results.json" in demo.what_went_wrong(None)


@pytest.mark.slow
def test_running_the_release_prints_no_kernel_transport_warning(capfd):
    rows = demo.run_release_cells(COURSE)
    assert [grade_id for grade_id, _ in rows] == ["setup", "residual_block", "residual_block_demo", "resnet18_adaptation"]
    out, err = capfd.readouterr()
    assert "without encryption" not in out + err

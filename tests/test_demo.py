"""`make demo`'s example class: real catalogue notebooks, held to the catalogue's expectations."""

from autograder import demo
from autograder.course import COURSE


def test_every_example_student_is_a_notebook_of_the_repository():
    for student, path in demo.EXAMPLE_CLASS.items():
        assert (COURSE.root / path).is_file(), student


def test_the_demo_expects_what_the_catalogue_expects():
    """The totals the demo checks come from tests/submissions/expected.json, so a change of policy
    that the catalogue records cannot leave the demo failing on a working machine."""
    totals = demo.expected_totals()
    assert set(totals) == set(demo.EXAMPLE_CLASS)
    assert totals["ada"] == 10.0 and totals["dee"] == 10.0  # correct notebooks
    assert totals["eve"] == 0.0  # the blank release
    assert 0 < totals["ben"] < 10 and 0 < totals["cy"] < 10  # a mistake, a hostile notebook

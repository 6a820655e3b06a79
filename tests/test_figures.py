from assignments.notebook10 import figures
from autograder.course import COURSE


def test_the_committed_diagrams_are_what_the_script_draws(tmp_path):
    for path in figures.draw_all(tmp_path):
        assert path.read_bytes() == (COURSE.source() / path.name).read_bytes(), (
            f"source/notebook10/{path.name} is stale: run `make figures`, then `make release`")


def test_the_notebook_shows_both_diagrams_from_local_files(source_nb):
    text = "\n".join(c.source for c in source_nb.cells if c.cell_type == "markdown")
    assert f"]({figures.RESIDUAL_BLOCK})" in text and f"]({figures.UNET})" in text

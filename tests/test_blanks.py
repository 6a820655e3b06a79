import pytest

from autograder.blanks import BlankMarkerError, blank_line, blank_source, strip_markers


def test_a_marked_line_becomes_the_fragment_with_its_spans_blanked():
    line = "        self.bn1 = nn.BatchNorm2d(out_channels)  # STUDENT SEES: nn.BatchNorm2d(___)"
    student, blanks = blank_line(line)
    assert student == "        self.bn1 = nn.BatchNorm2d(___)"
    assert [b.answer for b in blanks] == ["out_channels"]


def test_several_blanks_on_one_line_keep_the_text_between_them():
    line = "conv(a, b, kernel_size=3, stride=stride, padding=1, bias=False)  # STUDENT SEES: kernel_size=___, stride=___, padding=___,"
    student, blanks = blank_line(line)
    assert student == "conv(a, b, kernel_size=___, stride=___, padding=___, bias=False)"
    assert [b.answer for b in blanks] == ["3", "stride", "1"]


def test_a_blank_at_the_end_of_a_fragment_takes_the_rest_of_the_code():
    student, blanks = blank_line("x = y + compute(z)  # STUDENT SEES: y + ___")
    assert student == "x = y + ___"
    assert [b.answer for b in blanks] == ["compute(z)"]


def test_unmarked_lines_are_left_alone():
    assert blank_line("out = F.relu(out)") == ("out = F.relu(out)", [])


@pytest.mark.parametrize("line, complaint", [
    pytest.param("a = f(1)  # STUDENT SEES: g(___)", "does not match", id="fragment-not-in-code"),
    pytest.param("a = f(1) + f(2)  # STUDENT SEES: f(___)", "more than one place", id="ambiguous"),
    pytest.param("a = f(1)  # STUDENT SEES: f(1)", "has no '___'", id="no-blank"),
])
def test_a_marker_that_does_not_describe_its_line_is_an_error(line, complaint):
    with pytest.raises(BlankMarkerError, match=complaint):
        blank_line(line)


def test_blank_source_numbers_the_lines_of_its_blanks():
    src = "a = 1\nb = f(2)  # STUDENT SEES: f(___)\nc = 3"
    student, blanks = blank_source(src)
    assert student == "a = 1\nb = f(___)\nc = 3"
    assert [(b.line, b.answer) for b in blanks] == [(1, "2")]


def test_strip_markers_leaves_the_solution_code():
    assert strip_markers("b = f(2)  # STUDENT SEES: f(___)\nc = 3") == "b = f(2)\nc = 3"

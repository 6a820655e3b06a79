"""Feedback pages and the class report in a real browser: headless Chromium (Debian's), driven by Playwright."""

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder import assignment, autograde, report
from autograder.course import COURSE
from assignments.notebook10 import NOTEBOOK
from tests.conftest import ITEM_CELLS
from tests.conftest import make_class

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
STUDENTS = {
    "ben": "bugs/bug_no_padding_score_partial.ipynb",
    "cid": "bugs/bug_device_hardcoded_cuda_score_partial.ipynb",
    "gus": "bugs/bug_batch_not_moved_to_device_score_partial.ipynb",  # the fix hint images = images.to(device)
    "eve": COURSE.release() / NOTEBOOK,  # the blank release: a traceback in every exercise cell
}
WIDTHS = {"laptop": 1280, "phone": 390}
# Tall enough to hold a whole graded cell at phone width: Playwright captures what lies beyond the
# viewport by resizing it and laying the whole page out again (about 7 s a shot here); within it, a
# shot takes a fifth of a second. The checks do not depend on the height.
HEIGHT = 2400
CHROMIUM = shutil.which("chromium")
FORBIDDEN = ("make_block_params", "HIDDEN_CASES", "def test_", "nb10_sandbox", "(16, 32, 1)", "[2, 16, 20, 20]")


@pytest.fixture(scope="module")
def feedback(tmp_path_factory):
    course = make_class(tmp_path_factory.mktemp("course"), STUDENTS)
    autograde.main(assignment="notebook10", course=course, workers=2)
    assignment._require(assignment.nbgrader("generate_feedback", "notebook10", course=course), "generate_feedback")
    report.main(assignment="notebook10", course=course, out=course.root / "report")
    return course


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `make setup` (as root) installs the Debian package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


def failed_messages(course, student):
    results = json.loads((course.autograded(student) / "notebook10.results.json").read_text())
    return [t["output"] for t in results["tests"] if t["score"] < t["max_score"]]


@pytest.mark.slow
@pytest.mark.parametrize("student", list(STUDENTS))
def test_the_feedback_page_shows_scores_messages_and_the_student_s_error_line(feedback, browser, student):
    page = browser.new_page(viewport={"width": 1200, "height": HEIGHT})
    page.goto((feedback.feedback(student) / "notebook10.html").as_uri())
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"feedback_{student}.png"))  # the page's top, for a person to look at
    messages = failed_messages(feedback, student)
    assert messages, "the fixture student should have failed checks"
    for message in messages:
        shown = page.get_by_text(message[:80], exact=False).first
        assert shown.is_visible(), f"not visible on the feedback page: {message!r}"
    assert page.get_by_text("residual_block_shapes:", exact=False).first.is_visible()
    text = page.inner_text("body")
    for secret in FORBIDDEN:
        assert secret not in text, f"the feedback page shows grader internals: {secret!r}"
    page.close()


@pytest.mark.slow
def test_a_cell_that_stopped_shows_the_student_s_own_line_and_exception(feedback, browser):
    page = browser.new_page()
    page.goto((feedback.feedback("cid") / "notebook10.html").as_uri())
    assert page.get_by_text("[grader] This cell stopped with RuntimeError", exact=False).first.is_visible()
    assert page.get_by_text("It was raised at line", exact=False).first.is_visible()
    assert page.get_by_text("resnet_model.to(device)", exact=False).first.is_visible()
    page.close()


# Every element whose content is wider than its box: clipped, scrolled or sticking out. Inline
# elements have no box (clientWidth 0) and are judged by the block around them.
OVERFLOWING = """() => [...document.querySelectorAll('*')]
    .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth)
    .map(e => `${e.tagName}.${e.className}: ${e.scrollWidth} > ${e.clientWidth}: ${(e.innerText || '').slice(0, 60)}`)"""


def page_path(course, name):
    return course.root / "report" / "report.html" if name == "report" else course.feedback(name) / "notebook10.html"


@pytest.mark.slow
@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("name", [*STUDENTS, "report"])
def test_nothing_is_cut_off_or_scrolls_sideways_at_laptop_and_phone_width(feedback, browser, name, width):
    page = browser.new_page(viewport={"width": WIDTHS[width], "height": HEIGHT})
    page.goto(page_path(feedback, name).as_uri())
    ARTIFACTS.mkdir(exist_ok=True)
    # a feedback page is taller at phone width than Chromium can capture whole: its first graded cell
    shown = page if name == "report" else page.locator(".code_cell:has(a[name='test_residual_block_shapes'])")
    shown.screenshot(path=str(ARTIFACTS / f"{name}_{width}.png"))
    assert page.evaluate("() => document.documentElement.scrollWidth") == WIDTHS[width]
    assert page.evaluate(OVERFLOWING) == []
    page.close()


@pytest.mark.slow
def test_a_long_fix_hint_is_shown_whole_at_laptop_width(feedback, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_path(feedback, "gus").as_uri())
    hint = page.get_by_text("images = images.to(device)", exact=False).first
    box, window = hint.bounding_box(), page.viewport_size
    assert box["x"] >= 0 and box["x"] + box["width"] <= window["width"]
    page.close()


@pytest.mark.slow
def test_the_summary_names_each_graded_item(feedback, browser):
    page = browser.new_page()
    page.goto(page_path(feedback, "ben").as_uri())
    assert "Test cell" not in page.locator("#toc li a").all_inner_texts()
    for item, cell in ITEM_CELLS.items():
        link = page.locator(f"#toc a[href='#{cell}']")
        assert link.count() == 1 and link.inner_text().startswith(f"{item}: "), (item, link.all_inner_texts())
    page.close()


def score_results(notebook):
    """The numeric results the graded test cells return, nbgrader's partial credit, by grade_id."""
    return {c.metadata.nbgrader["grade_id"]: o.data["text/plain"] for c in notebook.cells
            if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata.nbgrader.get("solution")
            for o in c.get("outputs", []) if o.output_type == "execute_result"}


@pytest.mark.slow
def test_the_score_a_test_cell_returns_is_kept_for_nbgrader_but_not_shown(feedback, browser):
    autograded = nbformat.read(feedback.autograded("ben") / NOTEBOOK, as_version=4)
    assert sorted(score_results(autograded)) == sorted(ITEM_CELLS.values())  # nbgrader reads them
    page = browser.new_page()
    page.goto(page_path(feedback, "ben").as_uri())
    for cell in ITEM_CELLS.values():
        shown = page.locator(f".code_cell:has(a[name='{cell}'])")
        assert shown.count() == 1, cell
        assert shown.locator(".output_execute_result").count() == 0, cell
        assert "Out[" not in shown.inner_text(), cell
    page.close()

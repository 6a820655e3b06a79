"""Feedback pages in a real browser: headless Chromium (Debian's), driven by Playwright."""

import json
import shutil
from pathlib import Path

import pytest

from autograder import assignment, autograde
from tests.conftest import make_class

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
STUDENTS = {
    "ben": "bugs/bug_no_padding_score_partial.ipynb",
    "cid": "bugs/bug_device_hardcoded_cuda_score_partial.ipynb",
}
CHROMIUM = shutil.which("chromium")
FORBIDDEN = ("make_block_params", "HIDDEN_CASES", "def test_", "nb10_sandbox", "(16, 32, 1)", "[2, 16, 20, 20]")


@pytest.fixture(scope="module")
def feedback(tmp_path_factory):
    course = make_class(tmp_path_factory.mktemp("course"), STUDENTS)
    autograde.main(assignment="notebook10", course=course, workers=2)
    assignment._require(assignment.nbgrader("generate_feedback", "notebook10", course=course), "generate_feedback")
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
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto((feedback.feedback(student) / "notebook10.html").as_uri())
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"feedback_{student}.png"), full_page=True)
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
    assert page.get_by_text("[grader] this cell stopped with RuntimeError at line", exact=False).first.is_visible()
    assert page.get_by_text("resnet_model.to(device)", exact=False).first.is_visible()
    page.close()

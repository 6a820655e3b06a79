"""Every case in tests/submissions/ scores as expected, item by item (the CLI door)."""

import re

import pytest

from autograder import engine
from tests.conftest import CASES, EXPECTED, TEST_LIMITS
from tests.submissions import build


@pytest.fixture(scope="session")
def graded(graded_catalogue):
    return graded_catalogue


def test_the_committed_cases_are_what_the_case_lists_build():
    assert build.expected_json() == (CASES / "expected.json").read_text(), "run python -m tests.submissions.build"
    for case in build.CASES:
        assert build.path_of(case).read_text() == build.apply(case), f"{case.name} is stale"


def test_there_are_enough_cases_of_each_kind():
    groups = [name.split("/")[0] for name in EXPECTED]
    assert groups.count("correct") >= 12 and groups.count("bugs") >= 15 and groups.count("hostile") >= 15


def _pending_marks(name: str) -> list:
    from tests.submissions.cases_accuracy import PENDING
    from tests.submissions.cases_integrity3 import PENDING as PENDING3

    if name in PENDING3:
        return [pytest.mark.xfail(reason="red team round 3 (REDTEAM3.md): not scored fairly yet", strict=True)]
    return [pytest.mark.xfail(reason="accuracy issue: not scored fairly yet", strict=True)] if name in PENDING else []


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=_pending_marks(n)) for n in EXPECTED])
def test_each_submission_scores_as_expected_item_by_item(graded, name):
    result = graded[name]
    assert not result.internal_errors, result.internal_errors
    got = {item: score for item, (score, _) in result.item_scores().items()}
    want = EXPECTED[name]["expect"]
    messages = "\n".join(f"{t.name}: {t.output}" for t in result.tests if t.score < t.max_score)
    assert got == pytest.approx(want, abs=1e-6), f"{EXPECTED[name]['why']}\n{messages}"
    assert bool(result.problem) == EXPECTED[name]["review"], \
        f"{EXPECTED[name]['why']}: review expected {EXPECTED[name]['review']}, reasons {result.review}"


def _message_cases() -> list[str]:
    from tests.submissions.cases_accuracy import MESSAGES

    return [name for name in EXPECTED if name.split("/")[1].removesuffix(".ipynb") in MESSAGES]


@pytest.mark.slow
@pytest.mark.parametrize("name", _message_cases())
def test_the_failing_checks_name_the_mistake(graded, name):
    """For the cases in cases_accuracy.MESSAGES, the messages of the failing checks of the mistake's
    item say what the mistake is (and not another one)."""
    from tests.submissions.cases_accuracy import MESSAGES, message_problems

    case = name.split("/")[1].removesuffix(".ipynb")
    failing = [t.output for t in graded[name].tests if t.item == MESSAGES[case]["item"] and t.score < t.max_score]
    assert not message_problems(case, failing), "\n".join(failing)


def _integrity_cases() -> list[str]:
    from tests.submissions.cases_integrity import CASES as INTEGRITY

    return [f"{c.group}/{c.name}.ipynb" for c in INTEGRITY]


@pytest.fixture(scope="session")
def graded_cold():
    notebooks = {name: (CASES / name).read_bytes() for name in _integrity_cases()}
    return engine.grade(notebooks, assignment="notebook10", limits=TEST_LIMITS, warm=False, workers=2)


@pytest.mark.slow
@pytest.mark.parametrize("name", _integrity_cases())
def test_each_integrity_attack_scores_as_expected_in_a_fresh_bubblewrap_sandbox_too(graded_cold, name):
    """The other door: the attacks of issue 10, each in its own fresh bubblewrap sandbox."""
    result = graded_cold[name]
    got = {item: score for item, (score, _) in result.item_scores().items()}
    assert got == pytest.approx(EXPECTED[name]["expect"], abs=1e-6), f"{EXPECTED[name]['why']}\n{result.review}"
    assert bool(result.problem) == EXPECTED[name]["review"], result.review


@pytest.mark.slow
def test_no_message_names_the_meta_device_that_stands_in_for_a_gpu(graded):
    """The run with CUDA simulated puts the notebook's GPU on PyTorch's meta device; a student wrote
    cuda, and reads cuda (bugs/bug_batch_sent_to_cuda_literal: "Tensor on device meta ...")."""
    said = [(name, t.output) for name, result in graded.items() if not name.startswith("hostile/")
            for t in result.tests if re.search(r"(?<![a-z])meta(?![a-z])", t.output or "", re.IGNORECASE)]
    assert said == [], said[:3]


def test_only_the_grader_marks_a_stop_as_the_simulated_gpus_limit():
    """A cell stopped in the simulated-GPU run by what a data-less tensor cannot do (.item()) is marked,
    in true words, when the same cell ran through on this machine; a mark the sandbox sent is dropped,
    and a stop the real run shares (or .numpy(), which a real GPU refuses too) is not marked."""
    from autograder.evidence import World
    from assignments.notebook10.graders.checks import device_related
    from autograder.submission import _mark_simulation_limits

    def error(message, **extra):
        return {"status": "error", "error": {"type": "RuntimeError", "message": message, **extra}}

    item = "Tensor.item() cannot be called on meta tensors"
    numpy = "can't convert meta device type tensor to numpy. Use Tensor.cpu() to copy the tensor to host memory first."
    real = World("real", "cpu", False, cells={3: {"status": "ok"}, 4: {"status": "ok"}, 5: error(item),
                                              6: {"status": "ok"}})
    simulated = World("counterfactual", "cuda-simulated", True, cells={
        3: error(item), 4: error(numpy), 5: error(item), 6: error("Expected all tensors to be on the same device",
                                                                  simulation_limit=True)})
    _mark_simulation_limits({"real": real, "counterfactual": simulated})
    marked = {i: bool(c["error"].get("simulation_limit")) for i, c in simulated.cells.items()}
    assert marked == {3: True, 4: False, 5: False, 6: False}
    assert "meta" not in simulated.cells[3]["error"]["message"] and not device_related(simulated.cells[3]["error"])
    assert device_related(simulated.cells[4]["error"]) and device_related(simulated.cells[6]["error"])

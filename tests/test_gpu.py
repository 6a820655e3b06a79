"""Grading on a real GPU: the sandbox is shown the GPU, the real world runs on CUDA and the
counterfactual world hides it. Every case in tests/submissions/ must still score as expected.

Skipped, saying why, on a machine without CUDA (CI): there the device_placement grader is
checked in the simulated-GPU world by test_submissions.py instead. `make test-gpu` runs this
file alone on a GPU machine.
"""

import json
import os

import pytest
import torch

from autograder import engine, sandbox
from autograder.course import COURSE
from assignments.notebook10 import NOTEBOOK
from autograder.sandbox import Limits
from tests.conftest import CASES, EXPECTED, TEST_LIMITS

DEVICE_CASES = ["correct/correct_solution_as_released_success_score_full.ipynb",
                "correct/correct_device_cuda_zero_success_score_full.ipynb",
                "bugs/bug_device_hardcoded_cpu_score_partial.ipynb",
                "bugs/bug_device_hardcoded_cuda_score_partial.ipynb",
                "bugs/bug_batch_not_moved_to_device_score_partial.ipynb",
                "bugs/bug_model_not_moved_to_device_score_partial.ipynb"]

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="no CUDA device on this machine (torch.cuda.is_available() is False); device "
                              "placement is checked in the simulated-GPU world by test_submissions.py instead"),
]


def _scores(result: engine.Result) -> dict[str, float]:
    return {item: score for item, (score, _) in result.item_scores().items()}


def test_the_sandbox_is_shown_the_gpu():
    assert sandbox.gpu_devices(), "CUDA works here but no /dev/nvidia* device file was found for the sandbox"
    assert "RLIMIT_DATA" in Limits().rlimits() and "RLIMIT_AS" not in Limits().rlimits()


def test_the_solution_runs_on_the_real_gpu_in_one_world_and_on_the_cpu_in_the_other():
    """The instructor's own notebook, graded: full marks, and the evidence says where it ran."""
    sub = engine.run_submission("source", (COURSE.source() / NOTEBOOK).read_bytes(), seed=3, assignment="notebook10", limits=TEST_LIMITS)
    real, other = sub.world("real"), sub.world("counterfactual")
    assert (real.mode, real.cuda) == ("real", True), real
    assert (other.mode, other.cuda) == ("cuda-hidden", False), other
    where = {name: world.probes["device"] for name, world in sub.worlds.items() if "device" in world.probes}
    for name, want in (("real", "cuda"), ("counterfactual", "cpu")):
        found = where[name]
        assert found["device"]["type"] == want and found["images"] == want and found["output"] == want, (name, found)
        assert set(found["model"] if isinstance(found["model"], list) else [found["model"]]) == {want}, (name, found)
    outputs = "".join(cell.get("output") or "" for cell in real.cells.values())
    assert "Using device: cuda" in outputs, outputs[-2000:]
    for shape in ("torch.Size([4, 64, 32, 32])", "torch.Size([4, 128, 16, 16])", "torch.Size([4, 2])"):
        assert shape in outputs


@pytest.mark.parametrize("warm", [True, False], ids=["warm-pool", "cold-bubblewrap"])
def test_device_cases_score_as_expected_on_the_gpu(warm):
    if warm and os.geteuid() != 0:
        pytest.skip("the warm pool needs root")
    graded = engine.grade({name: (CASES / name).read_bytes() for name in DEVICE_CASES}, assignment="notebook10", limits=TEST_LIMITS,
                          warm=warm, workers=2)
    for name in DEVICE_CASES:
        result = graded[name]
        assert not result.internal_errors, result.internal_errors
        assert any(n.startswith("gpu: shown") for n in result.notes), result.notes
        messages = "\n".join(f"{t.name}: {t.output}" for t in result.tests if t.score < t.max_score)
        assert _scores(result) == pytest.approx(EXPECTED[name]["expect"], abs=1e-6), f"{name}\n{messages}"
        if "hardcoded_cuda" in name:  # fails where the real GPU is hidden
            assert "CUDA unavailable" in messages, messages
        elif name.startswith("bugs/"):  # fails where the real GPU is used
            assert "(GPU real)" in messages, messages


def test_every_case_scores_as_expected_on_the_gpu():
    """The whole test class, hostile cases included, through the warm pool with the GPU shown."""
    if os.geteuid() != 0:
        pytest.skip("the warm pool needs root")
    workers = max(2, min(8, (os.cpu_count() or 2) // 2))
    graded = engine.grade({name: (CASES / name).read_bytes() for name in EXPECTED}, assignment="notebook10", limits=TEST_LIMITS,
                          warm=True, workers=workers)
    wrong = {}
    for name, case in EXPECTED.items():
        got = _scores(graded[name])
        if graded[name].internal_errors or got != pytest.approx(case["expect"], abs=1e-6):
            wrong[name] = (got, case["expect"], graded[name].internal_errors,
                           [f"{t.name}: {t.output}" for t in graded[name].tests if t.score < t.max_score][:4])
    assert not wrong, json.dumps(wrong, indent=1)[:20000]

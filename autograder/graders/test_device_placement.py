"""device_placement (2 points, 0.25 per check and world): `device`, and the model, batch and output on it.

The notebook runs twice: on this machine as it is, and in a counterfactual world where the
answer of torch.cuda.is_available() is flipped (on a machine without a GPU, tensors sent to
"cuda" there land on PyTorch's data-less `meta` device). A correct notebook puts everything
on the CPU in one world and on the (simulated) GPU in the other; hard-coding either fails one.
"""

from __future__ import annotations

import pytest

from autograder.graders import fail, points
from autograder.graders.checks import probe, result_or_error

CELL = "test_device_placement"
WORLDS = ["real", "counterfactual"]
WORLD_WORDS = {"real": "on this machine", "counterfactual": "in the run with CUDA {flipped}"}


def probes(seed: int) -> list[dict]:
    return [{"id": "device", "op": "device"}]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _place(kind: str) -> str:
    return {"cpu": "the CPU", "cuda": "the GPU", "meta": "the GPU"}.get(kind, kind)


def _facts(submission, world: str) -> tuple[dict, str, str]:
    result = result_or_error(submission, probe(submission, "device", world), "Inspecting device")
    run = submission.world(world)
    gpu = bool(run.cuda)
    where = WORLD_WORDS[world].format(flipped="available" if gpu else "unavailable")
    if gpu:
        where += f" (GPU {'simulated' if run.mode == 'cuda-simulated' else 'real'})"
    landing = "meta" if run.mode == "cuda-simulated" else "cuda"
    return result, where, landing if gpu else "cpu"


def _device_type(result: dict, world_mode: str | None) -> str | None:
    kind = result["device"]["type"]
    return "cuda" if kind == "meta" and world_mode == "cuda-simulated" else kind


@points(0.25)
@pytest.mark.parametrize("world", ["real", "counterfactual"])
def test_device_placement_choice(submission, world):
    result, where, _ = _facts(submission, world)
    run = submission.world(world)
    if not result["device"]["defined"]:
        fail(f"device is not defined {where}: " + (submission.first_failure_before("device", world, "device") or
                                                    "the setup cell did not define it") + ".")
    want = "cuda" if run.cuda else "cpu"
    got = _device_type(result, run.mode)
    if got != want:
        fail(f"{_sentence(where)}, device is {got!r} but should be {want!r}: device must be the GPU exactly when "
             "torch.cuda.is_available() says there is one.")


def _on_device(submission, world: str, what: str, key: str, fix: str, var: str) -> None:
    result, where, landing = _facts(submission, world)
    run = submission.world(world)
    device = _device_type(result, run.mode)
    expected = {"cuda": "meta" if run.mode == "cuda-simulated" else "cuda"}.get(device, device)
    found = result[key]
    if found is None:
        fail(f"{_sentence(what)} is not defined {where}: " + (submission.first_failure_before("device", world, var) or
                                                               "the cell that makes it did not finish") + ".")
    found_set = set(found) if isinstance(found, list) else {found}
    if found_set != {expected}:
        shown = " and ".join(sorted({_place(f) for f in found_set}))
        stopped = submission.first_failure_before("device", world, var)
        on = f"not on device ({_place(device)})" if device else "and device itself is not defined"
        fail(f"{_sentence(where)}, {what} is on {shown}, {on}: {fix}."
             + (f" Note: {stopped}." if stopped else ""))


@points(0.25)
@pytest.mark.parametrize("world", ["real", "counterfactual"])
def test_device_placement_model(submission, world):
    _on_device(submission, world, "the model", "model", "call resnet_model.to(device)", "resnet_model")


@points(0.25)
@pytest.mark.parametrize("world", ["real", "counterfactual"])
def test_device_placement_batch(submission, world):
    _on_device(submission, world, "the batch of images", "images", "images = images.to(device)", "images")


@points(0.25)
@pytest.mark.parametrize("world", ["real", "counterfactual"])
def test_device_placement_output(submission, world):
    _on_device(submission, world, "the output", "output", "compute it with the model and batch on device", "output")

"""device_placement (2 points, 0.25 per check and world): `device`, and on it the models (resnet_model
and the demo's two blocks), the batches (images and the demo's two inputs) and the output.

The notebook runs twice: on this machine as it is, and in a counterfactual world where the
answer of torch.cuda.is_available() is flipped (on a machine without a GPU, tensors sent to
"cuda" there land on PyTorch's data-less `meta` device, and the simulated machine has one GPU:
"cuda:1" does not exist there, as on a real one-GPU machine). A correct notebook puts everything
on the CPU in one world and on the (simulated) GPU in the other; hard-coding either fails one.

Only device mistakes are charged here. Where a tensor is missing because the notebook stopped
for another reason (a ResNet or data mistake), its check looks at what the notebook does with it
instead: the batch counts as moved when its cell moves it to device (`images.to(device)`), the
output when the model and the batch it is computed from are on device. Read the other way, the
batch passed to the model inside the call (`resnet_model(images.to(device))`) counts: an output
on device shows that the model's input was.
"""

from __future__ import annotations

import pytest

from assignments.notebook10.graders import messages
from autograder.graders import GradingFailure, fail, points, twoworld
from assignments.notebook10.graders.checks import probe, result_or_error

CELL = "test_device_placement"
WORLDS = ["real", "counterfactual"]
DEMO = ("block_same_dim", "block_change_dim", "input_tensor_1", "input_tensor_2")


def probes(seed: int) -> list[dict]:
    return [{"id": "device", "op": "device", "demo": list(DEMO)}]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _facts(submission, world: str) -> tuple[dict, str, str]:
    result = result_or_error(submission, probe(submission, "device", world), "Inspecting device")
    run = submission.world(world)
    gpu = bool(run.cuda)
    where = messages.world_words(world, gpu, run.mode == "cuda-simulated")
    landing = "meta" if run.mode == "cuda-simulated" else "cuda"
    return result, where, landing if gpu else "cpu"


_device_type = twoworld.device_type


def _stopped_by_other_mistake(submission, world: str, var: str) -> bool:
    """The variable is missing because an earlier cell stopped with an error that is not a device
    error, while device itself is right (so the device item has nothing of its own to charge)."""
    right = twoworld.device_right(probe(submission, "device", world), submission.world(world))
    return twoworld.stopped_by_other_mistake(submission, world, right, messages.DEVICE_WORDS)


def _made_in_a_world(submission, name: str) -> bool:
    """The demo object exists, with tensors or without, in one of the worlds."""
    for world in WORLDS:
        try:
            result = probe(submission, "device", world)
        except GradingFailure:  # that world has no device facts
            continue
        if "error" not in result and ((result.get("demo") or {}).get(name) is not None
                                      or name in (result.get("demo_defined") or [])):
            return True
    return False


_sends, _moves_to_device = twoworld.sends, twoworld.moves_to_device  # `name = ....to(device)`, name.to(device), ...


@points(0.25)
@pytest.mark.parametrize("world", ["real", "counterfactual"])
def test_device_placement_choice(submission, world):
    result, where, _ = _facts(submission, world)
    run = submission.world(world)
    wrong = twoworld.choice(result, run)
    if wrong is None:
        return
    if wrong.problem == "undefined":
        fail(f"device is not defined {where}: " + (submission.first_failure_before("device", world, "device") or
                                                    "the setup cell did not define it") + ".")
    if wrong.problem == "choice":
        fail(messages.device_choice_problem(where, wrong.got, wrong.want))
    fail(f"{_sentence(where)}, device is cuda:{wrong.index}, a GPU that a one-GPU machine does not have: use "
         "torch.device('cuda') (the current GPU) or cuda:0.")


_expected_place = twoworld.expected_place


def _check_place(submission, world, what, found, fix, var) -> None:
    result, where, landing = _facts(submission, world)
    run = submission.world(world)
    device = _device_type(result, run.mode)
    expected = _expected_place(result, run)
    found_set = set(found) if isinstance(found, list) else {found}
    if found_set != {expected}:
        stopped = submission.first_failure_before("device", world, var)
        fail(messages.placement_problem(where, what, found_set, device, fix) + (f" Note: {stopped}." if stopped else ""))


def _missing(submission, world, what, var) -> None:
    _, where, _ = _facts(submission, world)
    fail(f"{_sentence(what)} is not defined {where}: " + (submission.first_failure_before("device", world, var) or
                                                           "the cell that makes it did not finish") + ".")


@points(0.25)
@pytest.mark.parametrize("world", ["real", "counterfactual"])
def test_device_placement_models(submission, world):
    result, _, _ = _facts(submission, world)
    if result["model"] is None:
        _missing(submission, world, "the model", "resnet_model")
    _check_place(submission, world, "the model", result["model"], messages.DEVICE_FIXES["the model"], "resnet_model")
    _check_demo(submission, world, result, ("block_same_dim", "block_change_dim"))


@points(0.25)
@pytest.mark.parametrize("world", ["real", "counterfactual"])
def test_device_placement_batches(submission, world):
    result, _, _ = _facts(submission, world)
    run = submission.world(world)
    expected = _expected_place(result, run)
    images, output, model = result["images"], result["output"], result["model"]
    moved_in_call = images is not None and images != expected and output == expected and model == [expected]
    if images is None:
        if not (_stopped_by_other_mistake(submission, world, "images") and _moves_to_device(submission, "images")):
            _missing(submission, world, "the batch of images", "images")
    elif not moved_in_call:  # else: moved inside the call; the output on device shows the model's input was
        _check_place(submission, world, "the batch of images", images, messages.DEVICE_FIXES["the batch of images"],
                     "images")
    _check_demo(submission, world, result, ("input_tensor_1", "input_tensor_2"))


@points(0.25)
@pytest.mark.parametrize("world", ["real", "counterfactual"])
def test_device_placement_output(submission, world):
    result, _, _ = _facts(submission, world)
    run = submission.world(world)
    expected = _expected_place(result, run)
    if result["output"] is None:
        batch_ok = result["images"] == expected or (result["images"] is None and _moves_to_device(submission, "images"))
        if _stopped_by_other_mistake(submission, world, "output") and result["model"] == [expected] and batch_ok:
            return  # no output because of a ResNet or data mistake, with model and batch on device
        _missing(submission, world, "the output", "output")
    _check_place(submission, world, "the output", result["output"], messages.DEVICE_FIXES["the output"],
                 "output")


def _check_demo(submission, world, result, names) -> None:
    """The demo's blocks (their parameters; a block without any has nothing to place) or inputs."""
    demo = result.get("demo") or {}
    for name in names:
        found = demo.get(name)
        if found is None:
            if name.startswith("block") and _block_without_parameters(submission, world, name):
                continue
            if not _made_in_a_world(submission, name):
                continue  # the demo's objects are evidence where they exist: one the notebook never makes is
                # the shapes item's to charge, not a device mistake
            if twoworld.device_right(probe(submission, "device", world), submission.world(world)) and \
                    _moves_to_device(submission, name, strictly=True):
                continue  # sent to device where it is made, but its cell stopped first at another object's
                # device mistake, charged where that object is
            _missing(submission, world, f"the demo's {name}", name)
        _check_place(submission, world, f"the demo's {name}", found, f"{name} = ... .to(device)", name)


def _block_without_parameters(submission, world, name) -> bool:
    """The demo block exists but holds no tensor (the device probe saw none): nothing to place."""
    return name in (probe(submission, "device", world).get("demo_defined") or [])

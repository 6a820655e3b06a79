"""device_placement (2 points, 0.25 per check and run): `device`, and on it the model, the batch
(images and masks) and the logits.

The notebook runs twice: on this machine as it is, and with the answer of torch.cuda.is_available()
flipped (on a machine without a GPU, tensors sent to "cuda" there land on PyTorch's data-less
`meta` device). A correct notebook puts everything on the CPU in one run and on the (simulated) GPU
in the other; hard-coding either device fails one run.

Only device mistakes are charged here. Where a tensor is missing because the notebook stopped for
another reason (a U-Net mistake), its check looks at what the notebook does with it instead: the
batch counts as moved when its cell sends it to device, the logits when the model and the images
are on device.
"""

from __future__ import annotations

import pytest

from assignments.notebook11.graders import messages
from autograder.graders import evidence, fail, points, twoworld

CELL = "test_device_placement"
WORLDS = ["real", "counterfactual"]
BATCH = {"images": "the batch of images", "masks": "the batch of masks"}


def probes(seed: int) -> list[dict]:
    return [{"id": "device", "op": "device"}]


def _facts(submission, world: str) -> tuple[dict, str]:
    result = evidence(submission, "device", world)
    if "error" in result:
        raise RuntimeError(f"the device probe failed ({result['error'].get('message')})")
    run = submission.world(world)
    return result, messages.world_words(world, bool(run.cuda), run.mode == "cuda-simulated")


_device_type, _expected_place = twoworld.device_type, twoworld.expected_place


def _stopped_by_other_mistake(submission, world: str) -> bool:
    """An earlier cell stopped with an error that is not a device error, while device is right."""
    right = twoworld.device_right(evidence(submission, "device", world), submission.world(world))
    return twoworld.stopped_by_other_mistake(submission, world, right, messages.DEVICE_WORDS)


def _moves_to_device(submission, name: str) -> bool:
    """Whether a cell of the notebook makes `name` with ....to(device) (or .cuda())."""
    return twoworld.moves_to_device(submission, name, statements=False)


def _check_place(submission, world: str, what: str, found, var: str) -> None:
    result, where = _facts(submission, world)
    run = submission.world(world)
    found_set = set(found) if isinstance(found, list) else {found}
    if found_set != {_expected_place(result, run)}:
        stopped = submission.first_failure_before("device", world, var)
        fail(messages.placement_note(messages.placement_problem(where, what, found_set, _device_type(result, run.mode),
                                                                messages.DEVICE_FIXES[what]), stopped))


def _missing(submission, world: str, what: str, var: str) -> None:
    _, where = _facts(submission, world)
    fail(messages.missing_on_device(what, where, submission.first_failure_before("device", world, var)))


@points(0.25)
@pytest.mark.parametrize("world", WORLDS)
def test_device_placement_choice(submission, world):
    result, where = _facts(submission, world)
    run = submission.world(world)
    wrong = twoworld.choice(result, run)
    if wrong is None:
        return
    if wrong.problem == "undefined":
        fail(messages.device_not_defined(where, submission.first_failure_before("device", world, "device")))
    if wrong.problem == "choice":
        fail(messages.device_choice_problem(where, wrong.got, wrong.want))
    fail(messages.device_index_problem(where, wrong.index))


@points(0.25)
@pytest.mark.parametrize("world", WORLDS)
def test_device_placement_model(submission, world):
    result, _ = _facts(submission, world)
    if result["model"] is None:
        _missing(submission, world, "the model", "model")
    _check_place(submission, world, "the model", result["model"], "model")


@points(0.25)
@pytest.mark.parametrize("world", WORLDS)
def test_device_placement_batch(submission, world):
    result, _ = _facts(submission, world)
    for name, what in BATCH.items():
        if result[name] is None:
            if _stopped_by_other_mistake(submission, world) and _moves_to_device(submission, name):
                continue
            _missing(submission, world, what, name)
        _check_place(submission, world, what, result[name], name)


@points(0.25)
@pytest.mark.parametrize("world", WORLDS)
def test_device_placement_logits(submission, world):
    result, _ = _facts(submission, world)
    run = submission.world(world)
    expected = _expected_place(result, run)
    if result["logits"] is None:
        batch_ok = result["images"] == expected or (result["images"] is None and _moves_to_device(submission, "images"))
        if _stopped_by_other_mistake(submission, world) and result["model"] == [expected] and batch_ok:
            return  # no logits because of a U-Net mistake, with the model and the batch on device
        _missing(submission, world, "the logits", "logits")
    _check_place(submission, world, "the logits", result["logits"], "logits")

"""resnet18_adaptation (2 points, 0.5 each): torchvision's ResNet18 for 1-channel, 2-class images.

conv1 and fc are each checked on their own (the student's layer, seeded weights, compared with
reference code); "the rest" runs the student's model with reference conv1 and fc put in, so
that only the untouched layers are judged; the last check looks at the notebook's own batch.
"""

from __future__ import annotations

import numpy as np

from autograder import seeded as probe_side
from autograder import reference
from autograder.graders import fail, points
from autograder.graders.checks import close, conv_text, describe_error, probe, result_or_error

CELL = "test_resnet18_adaptation"
WORLDS = ["real"]


def probes(seed: int) -> list[dict]:
    return [{"id": "resnet", "op": "resnet", "var": "resnet_model", "seed": seed + 200, "shapes_of": ["images", "output"]}]


def warm_up(seed: int) -> None:
    """Compute the reference values for this seed now (see engine.warm_up_judging)."""
    for spec in probes(seed):
        reference.resnet_outputs(spec["seed"])


def _result(submission) -> dict:
    return result_or_error(submission, probe(submission, "resnet"), "Inspecting resnet_model")


def _expected(submission) -> dict:
    seed = next(p for p in submission.plan_probes(CELL) if p["id"] == "resnet")["seed"]
    return reference.resnet_outputs(seed)


def _check_output(got, expected: np.ndarray, what: str, problem: str) -> None:
    if isinstance(got, np.ndarray) and close(got, expected):
        return
    if problem:
        fail(problem + ".")
    if isinstance(got, dict) and "error" in got:
        fail(f"{what} raised {describe_error(got['error'])}.")
    fail(f"{what} does not compute what ResNet18 computes there.")


@points(0.5)
def test_resnet18_adaptation_conv1(submission):
    result = _result(submission)
    conv = result["conv1"]
    problem = ""
    if conv.get("type") != "Conv2d":
        problem = "resnet_model.conv1 must be an nn.Conv2d"
    elif conv["in"] != 1:
        problem = f"resnet_model.conv1 takes {conv['in']} input channels; chest X-rays have 1"
    elif (conv["out"], conv["kernel"], conv["stride"], conv["padding"], conv["bias"]) != (64, [7, 7], [2, 2], [3, 3], False):
        problem = (f"apart from its input channels, conv1 must stay as ResNet18 built it (64 filters of 7x7, "
                   f"stride 2, padding 3, no bias); yours is {conv_text(conv)}")
    _check_output(result.get("conv1_out"), _expected(submission)["conv1_out"], "resnet_model.conv1", problem)


@points(0.5)
def test_resnet18_adaptation_fc(submission):
    result = _result(submission)
    fc = result["fc"]
    problem = ""
    if fc.get("type") != "Linear":
        problem = "resnet_model.fc must be an nn.Linear layer"
    elif fc["out"] == 1000:
        problem = "resnet_model.fc still has ImageNet's 1000 outputs: replace it with a layer for 2 classes"
    elif fc["out"] != 2:
        problem = f"resnet_model.fc gives {fc['out']} output{'s' if fc['out'] != 1 else ''}; PneumoniaMNIST has 2 classes"
    elif fc["in"] != 512:
        problem = "resnet_model.fc must take the 512 features of ResNet18's last stage (resnet_model.fc.in_features)"
    _check_output(result.get("fc_out"), _expected(submission)["fc_out"], "resnet_model.fc", problem)


@points(0.5)
def test_resnet18_adaptation_rest_unchanged(submission):
    result = _result(submission)
    want = probe_side.resnet18_shapes()
    got = {k: tuple(v) for k, v in result["state"].items()}
    inner = [k for k in want if not k.startswith(("conv1.", "fc."))]
    changed = sorted({k.split(".")[0] for k in inner if got.get(k) != want[k]}
                     | {k.split(".")[0] for k in got if k not in want and not k.startswith(("conv1.", "fc."))})
    problem = (f"only conv1 and fc should change, but these parts of ResNet18 differ: {', '.join(changed)}"
               if changed else "")
    _check_output(result.get("rest_out"), _expected(submission)["rest_out"],
                  "resnet_model with its conv1 and fc set aside", problem)


@points(0.5)
def test_resnet18_adaptation_output_shape(submission):
    shapes = _result(submission)["vars"]
    for name, want, hint in (("images", [4, 1, 28, 28], "a batch of 4 one-channel 28x28 images: check batch_size"),
                             ("output", [4, 2], "two scores for each of the 4 images")):
        if shapes.get(name) is None:
            earlier = submission.first_failure_before("resnet", name=name)
            fail(f"{name} is not defined when the checks run" + (f": {earlier}." if earlier else "."))
        if shapes[name] != want:
            fail(f"{name} has the shape {tuple(shapes[name])}; it should be {tuple(want)}, {hint}.")

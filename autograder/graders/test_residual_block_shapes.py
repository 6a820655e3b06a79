"""residual_block_shapes (3 points): what shape a ResidualBlock gives, and its main path.

* seed cases (1): ResidualBlock(64, 64, 1) and (64, 128, 2) on a (4, 64, 32, 32) batch, and the
  notebook's own output_tensor_1 / output_tensor_2 (0.25 each);
* hidden cases (1): six configurations the student has not seen (1/6 each);
* main path (1): conv1 -> BN -> ReLU -> conv2 -> BN, built from the student's own conv1, bn1,
  conv2 and bn2 with seeded weights, compared numerically with reference code in train and
  eval mode (0.5 per block kind).
A shape only counts when the output is a real function of the input (finite, the same for the
same input in eval mode, different for a different input) computed by a block that has the
scaffold's layers; the notebook's own outputs count when running their block on their input
again gives them back.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder import reference
from autograder.graders import fail, points
from autograder.graders.checks import close, conv_text, describe_error, live, probe, result_or_error

CELL = "test_residual_block_shapes"
WORLDS = ["real"]

SEED_CASES = {"same": ((64, 64, 1), [4, 64, 32, 32]), "changed": ((64, 128, 2), [4, 64, 32, 32])}
SEED_VARS = {"output_tensor_1": [4, 64, 32, 32], "output_tensor_2": [4, 128, 16, 16]}
SEED_SOURCES = {"output_tensor_1": ("block_same_dim", "input_tensor_1"), "output_tensor_2": ("block_change_dim", "input_tensor_2")}
HIDDEN_CASES = {
    "hidden-1": ("the channels change at stride 1", (16, 32, 1), [2, 16, 20, 20]),
    "hidden-2": ("stride 2 with the same channels", (16, 16, 2), [2, 16, 18, 18]),
    "hidden-3": ("a non-square input", (32, 32, 1), [3, 32, 15, 9]),
    "hidden-4": ("a batch of one, an odd non-square input and stride 2", (8, 16, 2), [1, 8, 17, 11]),
    "hidden-5": ("few input channels", (3, 8, 1), [5, 3, 12, 12]),
    "hidden-6": ("small maps at stride 2", (64, 64, 2), [2, 64, 7, 7]),
}
MAIN_CASES = {"projection-block": ((8, 16, 2), [4, 8, 10, 10]), "identity-block": ((8, 8, 1), [4, 8, 9, 9])}


def probes(seed: int) -> list[dict]:
    specs = [{"id": f"shapes/{name}", "op": "block_shapes", "args": list(args), "input": shape, "seed": seed + i}
             for i, (name, (args, shape)) in enumerate(SEED_CASES.items())]
    # hidden cases run after the notebook's last cell (with its class as it was here): no later
    # cell can print what the block was built with
    specs += [{"id": f"shapes/{name}", "op": "block_shapes", "args": list(args), "input": shape, "seed": seed + 10 + i,
               "defer": True} for i, (name, (_, args, shape)) in enumerate(HIDDEN_CASES.items())]
    specs.append({"id": "shapes/vars", "op": "shapes", "vars": {k: list(v) for k, v in SEED_SOURCES.items()}})
    specs += [{"id": f"main/{name}", "op": "block_numeric", "args": list(args), "input": shape, "seed": seed + 30 + i,
               "modes": ["train", "eval"], "silence": None}
              for i, (name, (args, shape)) in enumerate(MAIN_CASES.items())]
    return specs


def warm_up(seed: int) -> None:
    """Compute the reference values for this seed now (see engine.warm_up_judging)."""
    reference.warm_up_blocks(probes(seed))


def layers_problem(result: dict) -> str | None:
    missing = result.get("missing_layers") or []
    if missing:
        return (f"the block has no {', '.join(missing)}: a residual block computes its output with these layers "
                "(they keep the scaffold's names)")
    depends = result.get("depends")
    if "depends" in result:  # evidence from the layers' behaviour: changing a layer must change the output
        if not isinstance(depends, dict):
            return "the block could not be run a second time on a small input to see which layers it uses"
        unused = [name for name in ("conv1", "bn1", "conv2", "bn2") if depends.get(name) is not True]
        if unused:
            return (f"its output does not change when {', '.join(unused)} change{'s' if len(unused) == 1 else ''}: "
                    "forward must compute the output with conv1, bn1, conv2 and bn2")
    return None


def shape_problem(args: tuple[int, int, int], input_shape: list[int], got: list[int] | None, hidden: bool) -> str | None:
    cin, cout, stride = args
    want = reference.block_output_shape(cin, cout, stride, input_shape)
    if got == want:
        return None
    if got is None or len(got) != 4:
        return "the block did not return a 4-dimensional tensor (batch, channels, height, width)"
    if got[0] != want[0]:
        return "the batch size changed; a block must keep it"
    if got[1] != want[1]:
        return ("the output does not have out_channels channels" if hidden else
                f"the output has {got[1]} channels instead of out_channels = {cout}")
    if stride == 1:
        return "height and width changed at stride 1: both 3x3 convolutions need padding=1 to keep them"
    return ("height and width are not what stride 2 gives: conv1 applies the block's stride with padding 1, "
            "and conv2 keeps the size (stride 1, padding 1)")


def _call(args: tuple[int, int, int]) -> str:
    return f"ResidualBlock({args[0]}, {args[1]}, stride={args[2]})"


@points(0.25)
@pytest.mark.parametrize("case", list(SEED_CASES))
def test_residual_block_shapes_seed_cases(submission, case):
    args, shape = SEED_CASES[case]
    result = result_or_error(submission, probe(submission, f"shapes/{case}"), f"{_call(args)} on a {tuple(shape)} batch")
    problem = shape_problem(args, shape, result["shape"], hidden=False) or live(result) or layers_problem(result)
    if problem:
        fail(f"{_call(args)} on a {tuple(shape)} batch: {problem}.")


@points(0.25)
@pytest.mark.parametrize("name", list(SEED_VARS))
def test_residual_block_shapes_seed_outputs(submission, name):
    found = probe(submission, "shapes/vars").get(name, {})
    got, want = found.get("shape"), SEED_VARS[name]
    if got is None:
        fail(f"{name} is not defined when the checks run: "
             + (submission.first_failure_before("shapes/vars", name=name) or "the cell that makes it did not run") + ".")
    if got != want:
        hint = " block_change_dim needs the stride that halves height and width." if name == "output_tensor_2" else ""
        fail(f"{name} has the shape {tuple(got)}, not {tuple(want)}.{hint}")
    sample = np.asarray(found["sample"])
    if not np.isfinite(sample).all() or float(sample.max()) == float(sample.min()):
        fail(f"{name} holds a single repeated value: a block's output depends on its input.")
    block, given = SEED_SOURCES[name]
    problem = layers_problem(found)
    if problem:
        fail(f"{name} comes from {block}, but {problem}.")
    if not found.get("reproduced"):
        fail(f"{name} is not what {block}({given}) gives: compute it by calling the block on its input.")


@points(1 / 6)
@pytest.mark.parametrize("case", list(HIDDEN_CASES))
def test_residual_block_shapes_hidden_cases(submission, case):
    label, args, shape = HIDDEN_CASES[case]
    result = result_or_error(submission, probe(submission, f"shapes/{case}"), f"In a hidden case ({label}) the block",
                             hidden=True)
    problem = shape_problem(args, shape, result["shape"], hidden=True) or live(result) or layers_problem(result)
    if problem:
        fail(f"In a hidden case ({label}): {problem}.")


GENERIC = "conv1 -> BatchNorm -> ReLU -> conv2 -> BatchNorm does not compute what it should"


def main_path_problem(result: dict, cin: int, cout: int, stride: int) -> str:
    main = result["main"]
    missing = [k for k, v in main.items() if v is None]
    if missing:
        return f"the block has no {', '.join(missing)} (the main path's layers keep the scaffold's names)"
    conv1, conv2 = main["conv1"], main["conv2"]
    if conv1.get("type") == "Conv2d":
        if conv1["kernel"] != [3, 3]:
            return "conv1 must be a 3x3 convolution (kernel_size=3)"
        if conv1["stride"] != [stride, stride]:
            return "conv1 must apply the block's stride (stride=stride)"
        if conv1["padding"] not in ([1, 1], "same"):
            return "conv1 needs padding=1, so that a 3x3 kernel keeps the size at stride 1"
        if conv1["bias"]:
            return "conv1 must have no bias (bias=False): BatchNorm follows it"
    if main["bn1"].get("features") not in (None, cout):
        return "bn1 must normalise conv1's output, which has out_channels channels"
    if conv2.get("type") == "Conv2d":
        if (conv2["in"], conv2["out"]) != (cout, cout):
            return "conv2 must go from out_channels to out_channels"
        if conv2["kernel"] != [3, 3]:
            return "conv2 must be a 3x3 convolution"
        if conv2["stride"] != [1, 1]:
            return "conv2 must use stride 1: only conv1 applies the block's stride"
        if conv2["padding"] not in ([1, 1], "same"):
            return "conv2 needs padding=1 (or 'same') to keep the size"
        if conv2["bias"]:
            return "conv2 must have no bias (bias=False): BatchNorm follows it"
    if main["bn2"].get("features") not in (None, cout):
        return "bn2 must normalise conv2's output, which has out_channels channels"
    if result.get("load"):
        bad = result["load"][0]
        return f"{bad['param']} has the shape {tuple(bad['found'] or ())}, which does not fit the main path"
    return (GENERIC + ": check conv1 "
            f"{conv_text(conv1)} and conv2 {conv_text(conv2)}")


@points(0.5)
@pytest.mark.parametrize("case", list(MAIN_CASES))
def test_residual_block_shapes_main_path(submission, case):
    (cin, cout, stride), shape = MAIN_CASES[case]
    result = result_or_error(submission, probe(submission, f"main/{case}"), f"Building {_call((cin, cout, stride))}")
    spec = next(p for p in submission.plan_probes(CELL) if p["id"] == f"main/{case}")
    for mode in ("train", "eval"):
        got = result["modes"][mode]["M"]
        expected = reference.block_outputs(cin, cout, stride, spec["seed"], shape, mode)["M"]
        if isinstance(got, np.ndarray) and close(got, expected):
            continue
        problem = main_path_problem(result, cin, cout, stride)
        if isinstance(got, dict) and "error" in got and problem.startswith(GENERIC):
            problem = f"it raised {describe_error(got['error'])}"
        fail(f"Main path of {_call((cin, cout, stride))} in {mode} mode: {problem}.")

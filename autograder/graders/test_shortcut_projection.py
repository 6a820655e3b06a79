"""shortcut_projection (3 points): the shortcut, and how it meets the main path.

* identity (1): with stride 1 and equal channels the shortcut has no parameters and the block
  adds x itself: with the main path's convolutions zeroed (its output is then one constant per
  channel, c, whatever the order of its layers), the block gives relu(x + c) (0.5 per
  configuration);
* projection (1): when the stride, the channels or both change, the shortcut is a 1x1
  convolution with the block's stride and no bias, then BatchNorm; checked by loading seeded
  weights into the student's shortcut and comparing its output with reference code, and by the
  block's own output with the main path's convolutions zeroed, relu(shortcut(x) + c), train and
  eval mode (1/3 per kind of change);
* added before the final ReLU (1): the block's output is relu(main(x) + shortcut(x)), with the
  student's own main path and shortcut, so a mistake inside either does not cost this point
  again as long as the block still runs; a block whose two paths give different shapes cannot
  add them, and loses it (0.5 for an identity block, 0.5 for a projecting one).
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder import reference
from autograder.graders import fail, points
from autograder.graders.checks import close, conv_text, describe_error, probe, result_or_error

CELL = "test_shortcut_projection"
WORLDS = ["real"]

IDENTITY_CASES = {"identity-small": ((8, 8, 1), [4, 8, 9, 9]), "identity-64": ((64, 64, 1), [2, 64, 8, 8])}
PROJECTION_CASES = {
    "channels-change": ("only the channels change (stride 1)", (8, 16, 1), [4, 8, 9, 9]),
    "stride-change": ("only the stride changes (same channels)", (8, 8, 2), [4, 8, 11, 7]),
    "both-change": ("both the stride and the channels change", (8, 16, 2), [4, 8, 10, 10]),
}
WIRING_CASES = {"identity-block": ((8, 8, 1), [4, 8, 9, 9]), "projection-block": ((8, 16, 2), [4, 8, 10, 10])}


def probes(seed: int) -> list[dict]:
    cases = [(f"identity/{k}", a, s) for k, (a, s) in IDENTITY_CASES.items()]
    cases += [(f"projection/{k}", a, s) for k, (_, a, s) in PROJECTION_CASES.items()]
    cases += [(f"wiring/{k}", a, s) for k, (a, s) in WIRING_CASES.items()]
    return [{"id": pid, "op": "block_numeric", "args": list(args), "input": shape, "seed": seed + 100 + i,
             "modes": ["train", "eval"], "silence": None, "depends": not pid.startswith("wiring/")}
            for i, (pid, args, shape) in enumerate(cases)]


def warm_up(seed: int) -> None:
    """Compute the reference values for this seed now (see engine.warm_up_judging)."""
    reference.warm_up_blocks(probes(seed))


def _spec(submission, probe_id: str) -> dict:
    return next(p for p in submission.plan_probes(CELL) if p["id"] == probe_id)


def not_a_real_block(result: dict, identity: bool) -> str | None:
    """A shortcut is only judged in a block that computes with its layers: its output must change
    when conv1, bn1, conv2 or bn2 change (a block whose forward ignores its layers has no shortcut
    to speak of, however its attributes look). A block that cannot be called at all, because its
    main path is broken (judged in the shapes item), has its shortcut judged on the shortcut's
    own layers; for the identity, only when the main path at least computes."""
    depends = result.get("depends")
    if isinstance(depends, dict) and all(depends.get(k) is True for k in ("conv1", "bn1", "conv2", "bn2")):
        return None
    outs = [result["modes"][m] for m in result["modes"]]
    called = all(isinstance(o.get("Y"), np.ndarray) for o in outs)
    if not called:
        main_computes = all(isinstance(o.get("M"), np.ndarray) for o in outs)
        if main_computes or not identity:
            return None
    return ("the block's output does not change when its main path's layers (conv1, bn1, conv2, bn2) change, so "
            "its shortcut cannot be judged: forward must compute the block's output with those layers")


def _call(args) -> str:
    return f"ResidualBlock({args[0]}, {args[1]}, stride={args[2]})"


@points(0.5)
@pytest.mark.parametrize("case", list(IDENTITY_CASES))
def test_shortcut_projection_identity(submission, case):
    args, shape = IDENTITY_CASES[case]
    pid = f"identity/{case}"
    result = result_or_error(submission, probe(submission, pid), f"Building {_call(args)}")
    missing = [k for k, v in result["main"].items() if v is None]
    if missing:
        fail(f"{_call(args)} has no {', '.join(missing)}: without its main path there is nothing for a shortcut "
             "to go around.")
    if result["shortcut_params"]:
        layers = ", ".join(d["type"] for d in result["shortcut"]) or "layers"
        fail(f"{_call(args)}: with stride 1 and equal channels, x already has the shape of F(x), so the shortcut "
             f"must be the identity; yours has {layers} with {result['shortcut_params']} parameters.")
    for mode in ("train", "eval"):
        got = result["modes"][mode]["S"]
        x = reference.block_outputs(*args, _spec(submission, pid)["seed"], shape, mode)["x"]
        if isinstance(got, dict):
            fail(f"{_call(args)}: the shortcut raised {describe_error(got['error'])}.")
        if not close(got, x):
            fail(f"{_call(args)}: the shortcut must return x unchanged when stride is 1 and the channels match.")
    problem = not_a_real_block(result, identity=True)
    if problem:
        fail(f"{_call(args)}: {problem}.")


def projection_problem(result: dict, stride: int) -> str:
    leaves = result["shortcut"]
    convs = [d for d in leaves if d.get("type") == "Conv2d"]
    norms = [d for d in leaves if d.get("type") == "BatchNorm2d"]
    if not convs:
        return "the shortcut has no convolution, so x cannot be projected to the new shape"
    conv = convs[0]
    if len(convs) > 1:
        return "the shortcut should hold a single 1x1 convolution"
    if conv["kernel"] != [1, 1]:
        return f"the projection must be a 1x1 convolution (kernel_size=1); yours is {conv_text(conv)}"
    if conv["stride"] != [stride, stride]:
        return "the projection convolution must use the block's stride (stride=stride)"
    if conv["bias"]:
        return "the projection convolution must have no bias (bias=False): BatchNorm follows it"
    if not norms:
        return "the projection convolution must be followed by BatchNorm2d(out_channels)"
    return "the shortcut does not compute BatchNorm(1x1 convolution(x))"


@points(1 / 3)
@pytest.mark.parametrize("case", list(PROJECTION_CASES))
def test_shortcut_projection_conv_bn(submission, case):
    label, args, shape = PROJECTION_CASES[case]
    pid = f"projection/{case}"
    result = result_or_error(submission, probe(submission, pid), f"Building a block where {label}")
    for mode in ("train", "eval"):
        got = result["modes"][mode]["S"]
        expected = reference.block_outputs(*args, _spec(submission, pid)["seed"], shape, mode)["S"]
        if isinstance(got, np.ndarray) and close(got, expected):
            problem = not_a_real_block(result, identity=False)
            if problem:
                fail(f"When {label}, {problem}.")
            continue
        problem = projection_problem(result, args[2])
        if isinstance(got, dict) and problem.startswith("the shortcut does not"):
            problem = f"the shortcut raised {describe_error(got['error'])}"
        fail(f"When {label}, {problem} ({mode} mode).")


@points(0.5)
@pytest.mark.parametrize("case", list(WIRING_CASES))
def test_shortcut_projection_added_before_relu(submission, case):
    args, shape = WIRING_CASES[case]
    result = result_or_error(submission, probe(submission, f"wiring/{case}"), f"Building {_call(args)}")
    for mode in ("train", "eval"):
        outs = result["modes"][mode]
        y, m, s = outs["Y"], outs["M"], outs["S"]
        if isinstance(y, dict):
            fail(f"{_call(args)}: calling the block raised {describe_error(y['error'])}.")
        if not isinstance(m, np.ndarray) or not isinstance(s, np.ndarray) or m.shape != s.shape:
            fail(f"{_call(args)}: the addition cannot be checked until the main path and the shortcut give "
                 "outputs of the same shape (see the other checks).")
        relu = lambda a: np.maximum(a, 0)  # noqa: E731
        if close(y, relu(m + s)):
            continue
        if close(y, m + s):
            fail(f"{_call(args)}: the block must end with a ReLU applied after the addition.")
        if close(y, relu(m)) or close(y, m):
            fail(f"{_call(args)}: the shortcut's output is never added to the main path (out += self.shortcut(x)).")
        if close(y, relu(m) + s) or close(y, relu(relu(m) + s)):
            fail(f"{_call(args)}: the ReLU is applied before the addition; it belongs after it: "
                 "out = relu(main(x) + shortcut(x)).")
        fail(f"{_call(args)}: the output is not relu(main path + shortcut) ({mode} mode).")

"""What the two block items share: the numeric runs of a ResidualBlock (one probe per configuration,
run at the shapes check's place and read by both items) and how their evidence is read.

A numeric run builds the student's block, loads a correct block's seeded values into it by role
(the main path's layers by the scaffold's names, or by their role where the names are missing;
the shortcut's convolution and BatchNorm), and runs the student's own forward on a seeded input,
in train and eval mode. The sandbox reports (probe.probe_block_numeric):

* Y: the block's output; S: its shortcut's output as forward computed it (the outermost module
  forward called on x itself, other than the main path), or that forward called none (the
  identity), or that it raised before;
* in train mode, the gradient of sum(Y * w) with respect to x and to the main path's parameters;
* Z: the output with the main path's convolutions zeroed, so that the main path gives one
  constant per channel whatever the order of its layers: Z = relu(S + c) shows how the shortcut
  joins, independently of the main path; and Z's gradient with respect to x, which flows along
  the shortcut only.

Each item then judges its own part with the student's other parts as they are: the main path is
checked against relu(M_ref + the student's S); the shortcut against the reference shortcut; the
join on Z.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from assignments.notebook10 import reference
from assignments.notebook10.graders.checks import close, joins, probe, result_or_error

# configuration -> (args, input shape); seed offsets are fixed by the order
NUMERIC_CASES = {
    "b-8-8-1": ((8, 8, 1), [4, 8, 9, 9]),
    "b-64-64-1": ((64, 64, 1), [2, 64, 8, 8]),
    "b-8-16-1": ((8, 16, 1), [4, 8, 9, 9]),
    "b-16-8-1": ((16, 8, 1), [4, 16, 9, 9]),
    "b-8-8-2": ((8, 8, 2), [4, 8, 11, 7]),
    "b-8-8-3": ((8, 8, 3), [4, 8, 11, 7]),
    "b-8-16-2": ((8, 16, 2), [4, 8, 10, 10]),
    "b-16-8-2": ((16, 8, 2), [4, 16, 10, 10]),
}
MODES = ("train", "eval")


def numeric_probes(seed: int) -> list[dict]:
    return [{"id": f"block/{name}", "op": "block_numeric", "args": list(args), "input": shape, "seed": seed + 30 + 3 * i,
             "modes": list(MODES), "silence": None, "depends": True}
            for i, (name, (args, shape)) in enumerate(NUMERIC_CASES.items())]


def call(args) -> str:
    return f"ResidualBlock({args[0]}, {args[1]}, stride={args[2]})" if len(args) > 2 else \
        f"ResidualBlock({args[0]}, {args[1]})"


def run(submission, name: str, what: str) -> dict:
    return result_or_error(submission, probe(submission, f"block/{name}"), what)


def spec(submission, name: str) -> dict:
    return next(p for p in submission.plan_probes("test_residual_block_shapes") if p["id"] == f"block/{name}")


def expected(submission, name: str, mode: str) -> dict[str, np.ndarray]:
    (cin, cout, stride), shape = NUMERIC_CASES[name]
    return reference.block_outputs(cin, cout, stride, spec(submission, name)["seed"], shape, mode)


def upstream(submission, name: str) -> np.ndarray:
    (cin, cout, stride), shape = NUMERIC_CASES[name]
    from assignments.notebook10.seeded import block_output_shape, make_input

    return make_input(block_output_shape(cin, cout, stride, shape), spec(submission, name)["seed"] + 5).numpy()


def observed_shortcut(outs: dict, x: np.ndarray) -> Any:
    """The student's shortcut output: an array; x where forward called no module on x; None when
    unknown (forward raised before reaching it)."""
    s = outs.get("S")
    if isinstance(s, np.ndarray):
        return s
    composed = outs.get("S_composed")
    if isinstance(s, dict) and s.get("kind") == "identity":
        if not isinstance(composed, np.ndarray):
            return x
        # Where a projection is needed, a forward that applies no layer to x either never adds the
        # shortcut (the run with zeroed convolutions is then constant: the shortcut is judged on its
        # own layers) or adds something computed otherwise (functional calls), which must be what
        # those layers give.
        z = outs.get("Z")
        if isinstance(z, np.ndarray) and z.shape == composed.shape and not constant_per_channel(z) \
                and joins(z, composed) is None:
            return None
        return composed
    return composed if isinstance(composed, np.ndarray) else None


def constant_per_channel(z: np.ndarray) -> bool:
    return z.ndim == 4 and float(np.ptp(z.reshape(z.shape[0], z.shape[1], -1), axis=2).max()) < 1e-6


def uses_convolutions(result: dict) -> bool | None:
    """Whether the block's output changes when conv1 and conv2 change (None: could not be seen)."""
    depends = result.get("depends")
    if not isinstance(depends, dict):
        return None
    return depends.get("conv1") is True and depends.get("conv2") is True


def broken_main_path(outs: dict, ref: dict) -> bool:
    """The block could not be called because of its main path: composed from its own layers, the
    main path raises or gives another shape than a correct block's (judged in the shapes item)."""
    m = outs.get("M")
    if isinstance(outs.get("Y"), np.ndarray):
        return False
    return (isinstance(m, dict) and "error" in m) or (isinstance(m, np.ndarray) and m.shape != ref["M"].shape)


def main_path_right_where_block_raised(outs: dict, ref: dict) -> bool:
    """The block raised, its main path composed from its own layers is a correct block's, and its
    shortcut composed from its own layers is not: what raised is the shortcut (judged in the shortcut
    item). A block whose two parts are both right and still raises has a broken forward."""
    m, s = outs.get("M_seen"), outs.get("S_composed")  # the main path as forward computed it
    return not isinstance(outs.get("Y"), np.ndarray) and isinstance(m, np.ndarray) and close(m, ref["M"]) \
        and not (isinstance(s, np.ndarray) and close(s, ref["S"]))


JOINS = {  # how a block's output can be made of main path m and shortcut s (only "relu" is right)
    "relu": lambda m, s: np.maximum(m + s, 0),
    "sum": lambda m, s: m + s,  # no final ReLU
    "relu before": lambda m, s: np.maximum(m, 0) + s,  # ReLU before the addition, none after
    "relu twice": lambda m, s: np.maximum(np.maximum(m, 0) + s, 0),
    "main only, relu": lambda m, s: np.maximum(m, 0),  # the shortcut never added
    "main only": lambda m, s: m,
}


def join_form(y: np.ndarray, m: np.ndarray, s: np.ndarray) -> str | None:
    """Which of JOINS makes the block's output y of main path m and shortcut s (None: none does)."""
    if not isinstance(y, np.ndarray) or m is None or y.shape != m.shape:
        return None
    for name, join in JOINS.items():
        if name.startswith("main only") or (s is not None and s.shape == m.shape):
            if close(y, join(m, s if s is not None else m)):
                return name
    return None


def upstream_into_main(form: str, y: np.ndarray, m: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """What reaches the main path's output from sum(y * w), for the join form the block has."""
    if form in ("relu", "main only, relu"):
        return w * (y > 0)
    if form == "relu before":
        return w * (m > 0)
    if form == "relu twice":
        return w * (y > 0) * (m > 0)
    return w


__all__ = ["NUMERIC_CASES", "MODES", "numeric_probes", "call", "run", "spec", "expected", "upstream",
           "observed_shortcut", "uses_convolutions", "broken_main_path", "main_path_right_where_block_raised", "join_form", "joins"]

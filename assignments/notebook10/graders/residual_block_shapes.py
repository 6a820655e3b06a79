"""residual_block_shapes (3 points): what shape a ResidualBlock gives, and its main path.

* seed cases (0.5): ResidualBlock(64, 64, 1) and (64, 128, 2) on a (4, 64, 32, 32) batch (0.25 each);
* the notebook's own output_tensor_1 / output_tensor_2 (0.5): their shapes, what their block gives
  for their input, and, for output_tensor_2, the shape the demo prints (0.25 each);
* hidden cases (1): nine configurations the student has not seen, among them fewer output than
  input channels, stride 3 and a block built with two arguments (the default stride) (1/9 each);
* main path (1): conv1 -> BN -> ReLU -> conv2 -> BN as the block's forward computes it, with
  seeded weights, in train and eval mode, values and gradients (0.5 per block kind). It is judged
  against relu(reference main path + the student's own shortcut), so a shortcut mistake does not
  cost it (blocks.py).
A shape only counts when the output is a real function of the input (finite, the same for the
same input in eval mode, different for a different input) computed by a block that has its main
path's layers and uses its convolutions: changing conv1 or conv2 must change the output. The
notebook's own outputs count when running their block again on their input gives them back.
Where a device mistake stopped the notebook's demo on this machine, the shapes are read in the run
where it did not stop (the device item charges the mistake).
"""

from __future__ import annotations

import ast

import numpy as np
import pytest

from assignments.notebook10 import reference
from assignments.notebook10.graders import blocks, messages
from autograder.graders import fail, points
from assignments.notebook10.graders.checks import (close, conv_text, describe_error, live, probe,
                                       result_or_error, vars_world)

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
    "hidden-7": ("fewer output channels than input channels", (24, 12, 1), [2, 24, 10, 10]),
    "hidden-8": ("stride 3", (12, 12, 3), [2, 12, 13, 10]),
    "hidden-9": ("a block built with two arguments (the default stride)", (12, 12), [2, 12, 9, 9]),
}
CASE_LABELS = [label for label, *_ in HIDDEN_CASES.values()]  # the report masks them (one mistake, one message)
# ... and the block's arguments, wherever a message of this plug-in names them (report._case_parts)
CASE_PATTERNS = [(r"ResidualBlock\(\d+, \d+, stride=\d+\)", "ResidualBlock(\u2026)")]
MAIN_CASES = {"projection-block": "b-8-16-2", "identity-block": "b-8-8-1"}
PRINTED = {"output_tensor_2": "Output shape (changed dim)"}


def probes(seed: int) -> list[dict]:
    specs = [{"id": f"shapes/{name}", "op": "block_shapes", "args": list(args), "input": shape, "seed": seed + i}
             for i, (name, (args, shape)) in enumerate(SEED_CASES.items())]
    # hidden cases run after the notebook's last cell (with its class as it was here): no later
    # cell can print what the block was asked to do
    specs += [{"id": f"shapes/{name}", "op": "block_shapes", "args": list(args), "input": shape, "seed": seed + 10 + i,
               "defer": True} for i, (name, (_, args, shape)) in enumerate(HIDDEN_CASES.items())]
    # the notebook's own tensors, in both worlds: where a device mistake stopped the demo in one
    specs.append({"id": "shapes/vars", "op": "shapes", "vars": {k: list(v) for k, v in SEED_SOURCES.items()},
                  "configs": {"output_tensor_1": [64, 64, 1], "output_tensor_2": [64, 128, 2]}, "seed": seed + 5,
                  "worlds": ["real", "counterfactual"]})
    return specs + blocks.numeric_probes(seed)


def warm_up(seed: int) -> None:
    """Compute the reference values for this seed now (see engine.warm_up_judging)."""
    reference.warm_up_blocks(probes(seed))


def layers_problem(result: dict) -> str | None:
    missing = result.get("missing_layers") or []
    if missing:
        return (f"the block has no {', '.join(missing)}: a residual block computes its output with these layers "
                "(they keep the scaffold's names)")
    if "depends" in result:  # evidence from the layers' behaviour: changing a convolution must change the output
        uses = blocks.uses_convolutions(result)
        if uses is None:
            return "the block could not be run a second time on a small input to see which layers it uses"
        if not uses:
            unused = [n for n in ("conv1", "conv2") if (result.get("depends") or {}).get(n) is not True]
            return (f"its output does not change when {' or '.join(unused)} change{'s' if len(unused) == 1 else ''}: "
                    "forward must compute the output with the block's layers")
    return None


def shape_problem(args: tuple, input_shape: list[int], got: list[int] | None, hidden: bool) -> str | None:
    return messages.shape_problem(args, input_shape, got, hidden)


@points(0.25)
@pytest.mark.parametrize("case", list(SEED_CASES))
def test_residual_block_shapes_seed_cases(submission, case):
    args, shape = SEED_CASES[case]
    result = result_or_error(submission, probe(submission, f"shapes/{case}"), f"{blocks.call(args)} on a {tuple(shape)} batch")
    problem = shape_problem(args, shape, result["shape"], hidden=False) or live(result) or layers_problem(result)
    if problem:
        fail(messages.block_case_problem(args, shape, problem))


def _shows_shape_of(node: ast.AST, name: str) -> bool:
    """The expression holds name.shape or name.size()."""
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and n.attr == "shape" and isinstance(n.value, ast.Name) and n.value.id == name:
            return True
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "size" and \
                isinstance(n.func.value, ast.Name) and n.func.value.id == name:
            return True
    return False


def printed_problem(submission, name: str) -> str | None:
    """The demo shows `name`'s shape (the exercise's blank): a print (or the cell's last expression)
    of the tensor's own .shape, not another tensor's, not the answer typed in, and not left out."""
    label = PRINTED.get(name)
    cell = next((c for c in submission.plan["cells"] if c.get("grade_id") == "residual_block_demo"), None)
    if label is None or cell is None:
        return None
    try:
        tree = ast.parse(cell["source"])
    except SyntaxError:
        return None
    prints = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) in ("print", "display")]
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if any(_shows_shape_of(n, name) for n in prints) or (last is not None and _shows_shape_of(last, name)):
        return None
    if any(label in ast.unparse(n) for n in prints):
        return f"the line printing '{label}' must print {name}.shape (the blank is the tensor whose shape it shows)"
    return f"the demo must print {name}.shape (the line '{label}: ...')"


@points(0.25)
@pytest.mark.parametrize("name", list(SEED_VARS))
def test_residual_block_shapes_seed_outputs(submission, name):
    world = vars_world(submission, "shapes/vars", name)
    found = probe(submission, "shapes/vars", world).get(name, {})
    got, want = found.get("shape"), SEED_VARS[name]
    if got is None:
        fail(messages.not_defined(name, submission.first_failure_before("shapes/vars", name=name)
                                  or "the cell that makes it did not run"))
    block, given = SEED_SOURCES[name]
    if got != want:
        fail(messages.demo_output_problem(name, got))
    if found.get("data", True):
        sample = np.asarray(found["sample"])
        if not np.isfinite(sample).all() or float(sample.max()) == float(sample.min()):
            fail(f"{name} holds a single repeated value: a block's output depends on its input.")
        problem = layers_problem(found)
        if problem:
            fail(f"{name} comes from {block}, but {problem}.")
        if not found.get("reproduced") and found.get("deterministic", True):
            fail(f"{name} is not what {block}({given}) gives: compute it by calling the block on its input.")
    problem = printed_problem(submission, name)
    if problem:
        fail(f"{name}: {problem}.")


@points(1 / 9)
@pytest.mark.parametrize("case", list(HIDDEN_CASES))
def test_residual_block_shapes_hidden_cases(submission, case):
    label, args, shape = HIDDEN_CASES[case]
    result = result_or_error(submission, probe(submission, f"shapes/{case}"), f"In a hidden case ({label}) the block",
                             hidden=True)
    problem = shape_problem(args, shape, result["shape"], hidden=True) or live(result) or layers_problem(result)
    if problem:
        fail(f"In a hidden case ({label}): {problem}.")


GENERIC = messages.MAIN_PATH_GENERIC
VARIANT_WORDS = {
    "no first relu": "there is no ReLU between bn1 and conv2",
    "relu before bn1": "the first ReLU comes before bn1; it belongs after it: relu(bn1(conv1(x)))",
    "bn2 skipped": "bn2 is never applied: the main path ends with bn2(conv2(...))",
    "bn1 used twice": "bn1 is applied after conv2 as well; after conv2 comes bn2",
    "bn2 before conv2": "bn2 is applied before conv2; it belongs after it: bn2(conv2(...))",
}


def main_path_problem(result: dict, cin: int, cout: int, stride: int) -> str:
    main = result["main"]
    problem = messages.main_path_layers_problem(main, cin, cout, stride)
    if problem:
        return problem
    if result.get("load"):
        bad = result["load"][0]
        return f"{bad['param']} has the shape {tuple(bad['found'] or ())}, which does not fit the main path"
    return GENERIC + f": check conv1 {conv_text(main['conv1'])} and conv2 {conv_text(main['conv2'])}"


def _name_the_variant(submission, name: str, mode: str, y: np.ndarray, s: np.ndarray) -> str | None:
    (cin, cout, stride), shape = blocks.NUMERIC_CASES[name]
    seed = blocks.spec(submission, name)["seed"]
    for variant in reference.MAIN_PATH_VARIANTS:
        m = reference.main_path_variant(cin, cout, stride, seed, shape, mode, variant)
        if blocks.join_form(y, m, s):
            return VARIANT_WORDS[variant]
    return None


@points(0.5)
@pytest.mark.parametrize("case", list(MAIN_CASES))
def test_residual_block_shapes_main_path(submission, case):
    name = MAIN_CASES[case]
    (cin, cout, stride), shape = blocks.NUMERIC_CASES[name]
    call = blocks.call((cin, cout, stride))
    result = blocks.run(submission, name, f"Building {call}")
    for mode in blocks.MODES:
        outs = result["modes"][mode]
        ref = blocks.expected(submission, name, mode)
        y = outs["Y"]
        s = blocks.observed_shortcut(outs, ref["x"])
        if blocks.main_path_right_where_block_raised(outs, ref):
            continue  # the block raised at its shortcut or join, the shortcut item's to charge
        if s is None and isinstance(outs.get("M_seen"), np.ndarray) and close(outs["M_seen"], ref["M"]):
            continue  # what forward adds to it cannot be seen (the shortcut item judges that); the main path
            # as forward computed it is right
        form = blocks.join_form(y, ref["M"], s if s is not None else ref["S"])
        if form is None and isinstance(y, np.ndarray) and isinstance(outs.get("M_seen"), np.ndarray) \
                and close(outs["M_seen"], ref["M"]):
            continue  # the block joins its paths in a way no right block does (a leaky final activation, a
            # scaled shortcut): the shortcut item charges that; the main path as forward computed it is right
        if form is None:
            problem = main_path_problem(result, cin, cout, stride)
            if problem.startswith(GENERIC):
                if isinstance(y, dict) and "error" in y:
                    problem = f"it raised {describe_error(y['error'])}"
                elif s is not None and isinstance(y, np.ndarray):
                    problem = _name_the_variant(submission, name, mode, y, s) or problem
            fail(messages.main_path_problem_text(call, mode, problem))
        if mode == "train":
            grads = outs.get("grads") or {}
            if outs.get("grad_error"):
                if form != "relu":
                    break  # backward fails because of how the shortcut joins: the join's check says so
                fail(f"Main path of {call}: backward through the block raised {describe_error(outs['grad_error'])}, "
                     "so the block cannot learn: an in-place operation may overwrite a value autograd needs.")
            if not grads:
                fail(f"Main path of {call}: no gradient reaches conv1, bn1, conv2 or bn2, so the block cannot learn: "
                     "the main path must not be detached (no .detach(), no torch.no_grad() in forward).")
            w = blocks.upstream(submission, name)
            into_main = blocks.upstream_into_main(form, y, ref["M"], s if s is not None else ref["S"], w)
            want = reference.main_path_grads(cin, cout, stride, blocks.spec(submission, name)["seed"], shape, mode,
                                             into_main)
            wrong = [k for k, v in want.items() if not (isinstance(grads.get(k), np.ndarray) and close(grads[k], v))]
            if wrong:
                fail(f"Main path of {call}: the gradients of {', '.join(wrong)} are not what the main path's "
                     "computation gives: the main path must not be detached or computed outside autograd.")

"""resnet18_adaptation (2 points, 0.5 each): torchvision's ResNet18 for 1-channel, 2-class images.

conv1 and fc are each checked on their own (the student's layer, seeded weights, compared with
reference code); "the rest" runs the student's model with reference conv1 and fc put in, so
that only the untouched layers are judged; the last check looks at the notebook's own batch.
The numbers are computed in the run where everything is on the CPU (this machine's run without
a GPU; the run with CUDA hidden with one), so that a device mistake, which the device item
charges, does not cost them; the batch and output shapes are read in whichever run has them. A
layer wrapped alone in an nn.Sequential (fc = nn.Sequential(nn.Linear(512, 2))) is that layer.
"""

from __future__ import annotations

import numpy as np

from assignments.notebook10 import seeded as probe_side
from assignments.notebook10 import reference
from assignments.notebook10.graders import messages
from autograder.graders import fail, points
from assignments.notebook10.graders.checks import close, describe_error, device_related, probe, result_or_error

CELL = "test_resnet18_adaptation"
WORLDS = ["real", "counterfactual"]


def probes(seed: int) -> list[dict]:
    return [{"id": "resnet", "op": "resnet", "var": "resnet_model", "seed": seed + 200, "shapes_of": ["images", "output"]}]


def warm_up(seed: int) -> None:
    """Compute the reference values for this seed now (see engine.warm_up_judging)."""
    for spec in probes(seed):
        reference.resnet_outputs(spec["seed"])


def cpu_world(submission) -> str:
    """The run in which the notebook ran on the CPU (the ResNet's numbers are computed there)."""
    real = submission.world("real")
    return "counterfactual" if real is not None and real.cuda else "real"


def _result(submission, world: str | None = None) -> dict:
    return result_or_error(submission, probe(submission, "resnet", world or cpu_world(submission)),
                           "Inspecting resnet_model")


def _shapes(submission) -> dict:
    """images' and output's shapes, from the CPU run, or from the other where a device mistake
    stopped the ResNet cell in the CPU run."""
    main = _result(submission)["vars"]
    if all(main.get(n) is not None for n in ("images", "output")):
        return main
    other_world = "real" if cpu_world(submission) == "counterfactual" else "counterfactual"
    other = submission.world(other_world)
    found = other.probes.get("resnet") if other else None
    if not isinstance(found, dict) or "vars" not in found:
        return main
    run = submission.world(cpu_world(submission))
    index = submission.probe_index("resnet")
    failed = [c for i, c in sorted(run.cells.items()) if i < index and c.get("status") != "ok"] if run else []
    if any(device_related(c.get("error")) for c in failed):
        return {n: main.get(n) if main.get(n) is not None else found["vars"].get(n) for n in ("images", "output")}
    return main


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
    problem = messages.resnet_conv1_problem(result["conv1"]) or ""
    _check_output(result.get("conv1_out"), _expected(submission)["conv1_out"], "resnet_model.conv1", problem)


@points(0.5)
def test_resnet18_adaptation_fc(submission):
    result = _result(submission)
    problem = messages.resnet_fc_problem(result["fc"]) or ""
    _check_output(result.get("fc_out"), _expected(submission)["fc_out"], "resnet_model.fc", problem)


# ResNet18's layers that hold no weights (their change does not show in the state's shapes)
RESNET18_LAYERS = {"relu": "ReLU", "maxpool": "MaxPool2d", "avgpool": "AdaptiveAvgPool2d"}


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
    layers = result.get("children") or {}
    replaced = [f"{name} (it is {layers[name]} now)" if name in layers else f"{name} (it is gone)"
                for name, kind in RESNET18_LAYERS.items() if layers.get(name) != kind]
    if replaced and not problem:
        problem = ("only conv1 and fc should change, but ResNet18's layers without weights changed too: "
                   + ", ".join(replaced))
    _check_output(result.get("rest_out"), _expected(submission)["rest_out"],
                  "resnet_model with its conv1 and fc set aside", problem)


@points(0.5)
def test_resnet18_adaptation_output_shape(submission):
    shapes = _shapes(submission)
    for name in messages.RESNET_BATCH:
        if shapes.get(name) is None:
            fail(messages.not_defined(name, submission.first_failure_before("resnet", cpu_world(submission), name=name)))
        problem = messages.resnet_batch_problem(name, shapes[name])
        if problem:
            fail(problem)

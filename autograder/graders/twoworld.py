"""The two-world device check every assignment's device grader shares (its wording is the plug-in's).

A notebook runs twice: on this machine as it is, and with the answer of torch.cuda.is_available()
flipped (on a machine without a GPU, tensors sent to "cuda" there land on PyTorch's data-less
``meta`` device, and the simulated machine has one GPU). A correct notebook puts everything on
the CPU in one run and on the (simulated) GPU in the other. The plug-in's device probe reports
``device`` as {"defined", "type", "index"} and where each object is; these functions read that.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any


def device_related(error: dict | None, words: re.Pattern) -> bool:
    """Whether a cell's error is a device mistake: its text has the plug-in's device words (its
    messages.DEVICE_WORDS, which its self-checks use too). A stop the simulated GPU causes for lack of
    data (marked ``simulation_limit`` by the grader) is not one."""
    if error and error.get("simulation_limit"):
        return False
    return bool(error) and bool(words.search(f"{error.get('type', '')}: {error.get('message', '')}"))


def device_type(result: dict, mode: str | None) -> str | None:
    """The type of the notebook's `device` in that run ("cuda" where the simulated GPU shows it as meta)."""
    kind = result["device"]["type"]
    return "cuda" if kind == "meta" and mode == "cuda-simulated" else kind


def expected_place(result: dict, run: Any) -> str | None:
    """Where an object sent to `device` is found in that run (meta for the simulated GPU)."""
    device = device_type(result, run.mode)
    return {"cuda": "meta" if run.mode == "cuda-simulated" else "cuda"}.get(device, device)


def device_right(result: dict, run: Any) -> bool:
    """`device` is defined and is the GPU exactly when the run has one (GPU 0, or the current one)."""
    return "error" not in result and bool(result["device"]["defined"]) and \
        device_type(result, run.mode) == ("cuda" if run.cuda else "cpu") and result["device"].get("index") in (None, 0)


@dataclass(frozen=True)
class Choice:
    """What is wrong with the choice of `device` in one run: "undefined", "choice" (got instead of
    want) or "index" (a GPU other than the first); None when nothing is."""

    problem: str
    got: str | None = None
    want: str | None = None
    index: int | None = None


def choice(result: dict, run: Any) -> Choice | None:
    if not result["device"]["defined"]:
        return Choice("undefined")
    want = "cuda" if run.cuda else "cpu"
    got = device_type(result, run.mode)
    if got != want:
        return Choice("choice", got, want)
    index = result["device"].get("index")
    if got == "cuda" and index not in (None, 0):
        return Choice("index", got, want, index)
    return None


def stopped_by_other_mistake(submission: Any, world: str, right: bool, words: re.Pattern) -> bool:
    """An earlier cell stopped with an error that is not a device error (see device_related), while
    `device` is right (`right`): a missing object is then another item's mistake, not the device item's."""
    if not right:
        return False
    run, index = submission.world(world), submission.probe_index("device")
    failed = [c for i, c in sorted(run.cells.items()) if index is not None and i < index and c.get("status") != "ok"
              and c.get("error")] if run else []
    return bool(failed) and not any(device_related(c["error"], words) for c in failed)


def sends(call: ast.Call, strictly: bool = False) -> bool:
    """A call that sends its object to the device: ``.to(device)``, and unless `strictly`, ``.cuda()``."""
    return (call.func.attr == "cuda" and not strictly) or (call.func.attr == "to" and any(  # type: ignore[attr-defined]
        isinstance(a, ast.Name) and a.id == "device" for a in list(call.args) + [k.value for k in call.keywords]))


def moves_to_device(submission: Any, name: str, strictly: bool = False, statements: bool = True) -> bool:
    """Whether some cell of the notebook makes `name` with ``name = ....to(device)`` (or .cuda()); with
    `statements` (and not `strictly`), also ``name.to(device)`` and ``name.cuda()`` as statements."""
    for cell in submission.plan["cells"]:
        if cell["kind"] != "code":
            continue
        try:
            tree = ast.parse(cell["source"])
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if statements and not strictly and isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == name and sends(node):
                return True  # (name.to(device) not assigned moves a model; a tensor's .to returns a copy)
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets) \
                    and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute) \
                    and sends(node.value, strictly):
                return True
    return False

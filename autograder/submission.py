"""One graded submission as the trusted side sees it: the plan, the evidence, what went wrong."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from autograder.evidence import World, parse
from autograder.sandbox import RawRun


TAMPERED = "tampered: the evidence names cells or checks that the plan does not have"


def _checked(world: World, plan: dict) -> World:
    """Evidence that does not fit the plan (a cell report for a probe's place, a probe result
    nobody asked for) was not written by the runner: nothing from that world is believed."""
    cells = plan["cells"]
    asked = {p["id"] for c in cells if c["kind"] == "probe" and world.name in c["worlds"] for p in c["probes"]}
    fits = all(type(i) is int and 0 <= i < len(cells) and cells[i]["kind"] == "code" for i in world.cells) \
        and set(world.probes) <= asked
    if not fits:
        return World(world.name, world.mode, world.cuda, problem=TAMPERED)
    return world


@dataclass(repr=False)  # short: pytest shows the graders' arguments when a check fails
class Submission:
    key: str
    seed: int
    plan: dict | None = None
    worlds: dict[str, World] = field(default_factory=dict)
    raw: RawRun | None = None
    broken: str | None = None  # the notebook could not be graded at all, and why

    def __repr__(self) -> str:  # the default would print every array the sandbox sent (seconds per failed check)
        return f"<Submission {self.key!r}, seed {self.seed}>"

    @classmethod
    def from_run(cls, key: str, plan: dict, raw: RawRun) -> "Submission":
        worlds = {w: _checked(parse(raw.streams.get(w, b""), plan["nonce"], w), plan) for w in plan["worlds"]}
        return cls(key, plan["seed"], plan, worlds, raw)

    def world(self, name: str) -> World | None:
        if name == "sim":
            name = "counterfactual"
        return self.worlds.get(name)

    @property
    def tampered(self) -> str | None:
        for world in self.worlds.values():
            if world.problem and world.problem.startswith("tampered"):
                return world.problem
        return None

    def cell_label(self, index: int) -> str:
        cell = self.plan["cells"][index]
        return f"cell `{cell['grade_id']}`" if cell.get("grade_id") else f"code cell {cell['nb_index'] + 1}"

    def plan_probes(self, item: str) -> list[dict]:
        return [p for c in self.plan["cells"] if c["kind"] == "probe" and c["item"] == item for p in c["probes"]]

    def probe_index(self, probe_id: str) -> int | None:
        return next((i for i, c in enumerate(self.plan["cells"]) if c["kind"] == "probe"
                     and any(p["id"] == probe_id for p in c["probes"])), None)

    def first_failure_before(self, probe_id: str, world: str = "real", name: str | None = None) -> str | None:
        """The cell before this probe that stopped with an error, in words: the first one that
        assigns `name` if there is such a cell, else the first failed cell."""
        run, index = self.world(world), self.probe_index(probe_id)
        if run is None or index is None:
            return None
        failed = [i for i in sorted(run.cells) if i < index and run.cells[i]["status"] != "ok"
                  and run.cells[i].get("error")]
        if name:
            assigning = [i for i in failed if re.search(rf"^\s*{re.escape(name)}\s*[,=]", self.plan["cells"][i]["source"],
                                                        re.MULTILINE)]
            failed = assigning or failed
        if not failed:
            return None
        err = run.cells[failed[0]]["error"]
        line = f" at line {err['line']}: `{err['code']}`" if err.get("code") else ""
        message = f" ({err['message'][:160]})" if err.get("message") else ""
        return f"{self.cell_label(failed[0])} stopped with {err['type']}{line}{message}"

    def why_not_reached(self, probe_id: str, world: str = "real") -> str:
        """Why a probe has no result: the run stopped before it, or earlier cells failed."""
        run, index = self.world(world), self.probe_index(probe_id)
        where = "this check"
        if self.tampered:
            return ("This check could not be made: the notebook wrote into the grader's evidence channel. "
                    "Your instructor will review the submission.")
        if run is not None and index is not None and not any(i >= index for i in run.cells):
            last = max(run.cells, default=-1)
            reason = self.raw.killed if self.raw and self.raw.killed else (
                "the notebook's process ended early (os._exit, a crash, or a memory limit)")
            return (f"The notebook stopped before {where} could run: {reason}"
                    + (f"; the last cell that finished was {self.cell_label(last)}." if last >= 0 else "."))
        return f"{where.capitalize()} could not run."

"""One graded submission as the trusted side sees it: the plan, the evidence, what went wrong."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from autograder.evidence import World, parse
from autograder.sandbox import RawRun


TAMPERED = "tampered: the evidence does not follow the plan (cells or checks out of order, twice, or not asked for)"


def expected_order(plan: dict, world: str) -> tuple[list[tuple], dict[tuple, set[str]]]:
    """The frames a world sends, in order, and the check ids each probe frame must hold: every
    cell and check up to the world's last one, then the deferred checks (cases the notebook must
    not see run after its last cell)."""
    cells = plan["cells"]
    last = max((i for i, c in enumerate(cells) if c["kind"] == "probe" and world in c["worlds"]), default=-1)
    stop = len(cells) if world == "real" else last + 1
    order, later, ids = [], [], {}
    for i, cell in enumerate(cells[:stop]):
        if cell.get("skip"):
            continue
        if cell["kind"] == "code":
            order.append(("cell", i))
        elif world in cell["worlds"]:
            mine = [p for p in cell["probes"] if world in p.get("worlds", cell["worlds"])]
            now = {p["id"] for p in mine if not p.get("defer")}
            deferred = {p["id"] for p in mine if p.get("defer")}
            order.append(("probe", i, False))
            ids[("probe", i, False)] = now
            if deferred:
                later.append(("probe", i, True))
                ids[("probe", i, True)] = deferred
    return order + later, ids


def _checked(world: World, plan: dict) -> World:
    """Evidence that does not follow the plan (a report for a cell out of order or twice, a check
    nobody asked for, one reported at another check's place) was not written by the runner:
    nothing from that world is believed. A world that stopped early sends a prefix of the plan."""
    order, ids = expected_order(plan, world.name)
    sent = world.order
    fits = sent == order[:len(sent)]
    if fits:
        by_frame: dict[tuple, set[str]] = {}
        for result in world.probes.values():
            index = next((i for i, c in enumerate(plan["cells"]) if c["kind"] == "probe"
                          and any(p["id"] == result.get("id") for p in c["probes"])), None)
            spec = next((p for p in plan["cells"][index]["probes"] if p["id"] == result.get("id")), None) \
                if index is not None else None
            if spec is None:
                fits = False
                break
            by_frame.setdefault(("probe", index, bool(spec.get("defer"))), set()).add(result["id"])
        fits = fits and all(by_frame.get(frame, set()) == ids[frame] for frame in sent if frame[0] == "probe")
    if not fits:
        return World(world.name, world.mode, world.cuda, problem=TAMPERED, alerts=world.alerts)
    return world


# PyTorch's words for the stand-in of a GPU (the "meta" device) in the run where CUDA is simulated
META_WORDS = re.compile(r"(?<![A-Za-z])(meta|Meta|META)(?![A-Za-z])")  # in register_meta too


def _gpu_word(match: re.Match) -> str:
    return {"meta": "cuda", "Meta": "CUDA", "META": "CUDA"}[match.group(1)]


def _in_gpu_words(world: World) -> World:
    """In the run where CUDA is simulated the notebook's GPU is PyTorch's meta device; its errors
    say "meta" where the student wrote cuda. Say cuda, as a real GPU's run would."""
    if world.mode != "cuda-simulated":
        return world

    def fix(value):
        if isinstance(value, dict):
            if isinstance(value.get("error"), dict) and isinstance(value["error"].get("message"), str):
                value["error"]["message"] = META_WORDS.sub(_gpu_word, value["error"]["message"])
            if isinstance(value.get("message"), str) and "type" in value:
                value["message"] = META_WORDS.sub(_gpu_word, value["message"])
            for item in value.values():
                if isinstance(item, (dict, list)):
                    fix(item)
        elif isinstance(value, list):
            for item in value:
                fix(item)

    fix(world.cells)
    fix(world.probes)
    return world


# What the meta device cannot do because it holds no data, where a real GPU can: read a number out
# (.item(), float(), an if on a tensor), copy to the CPU, or an operation whose output size depends
# on the data (a boolean mask, nonzero, unique). Not .numpy(), which fails on a real GPU too. And a
# CUDA call the simulation does not stand in for ("no NVIDIA driver"): in that run every tensor sent
# to cuda lands on meta, so only such a call reaches the missing driver.
META_LIMITS = re.compile(r"cannot be called on meta tensors|Cannot copy out of meta tensor|register_meta function for|"
                         r"attempted to run this operator with Meta tensors|a meta tensor without output_size|"
                         r"from the 'Meta' backend|unsupported format string passed to Tensor\.__format__|"
                         r"Found no NVIDIA driver on your system")
SIMULATION_LIMIT = ("a real GPU runs this line, but the grader's simulated GPU holds no data to run it with; "
                    "what this cell makes after it was judged from your code")


def _mark_simulation_limits(worlds: dict[str, World]) -> None:
    """A cell that stopped in the run with a simulated GPU only because the simulation holds no data
    (it ran through on this machine) is not a device mistake: mark its error so, in true words."""
    real = worlds.get("real")
    for world in worlds.values():
        for cell in world.cells.values():  # the mark is the grader's alone: never one the sandbox sent
            if isinstance(cell, dict) and isinstance(cell.get("error"), dict):
                cell["error"].pop("simulation_limit", None)
        if world.mode != "cuda-simulated" or real is None:
            continue
        for index, cell in world.cells.items():
            error = cell.get("error") if isinstance(cell, dict) else None
            if isinstance(error, dict) and isinstance(error.get("message"), str) and \
                    META_LIMITS.search(error["message"]) and (real.cells.get(index) or {}).get("status") == "ok":
                error["simulation_limit"] = True
                error["message"] = SIMULATION_LIMIT


@dataclass(repr=False)  # short: pytest shows the graders' arguments when a check fails
class Submission:
    key: str
    seed: int
    plan: dict | None = None
    worlds: dict[str, World] = field(default_factory=dict)
    raw: RawRun | None = None
    broken: str | None = None  # the notebook could not be graded at all, and why
    scan: list[str] = field(default_factory=list)  # what the source scan found (scan.py)

    def __repr__(self) -> str:  # the default would print every array the sandbox sent (seconds per failed check)
        return f"<Submission {self.key!r}, seed {self.seed}>"

    @classmethod
    def from_run(cls, key: str, plan: dict, raw: RawRun) -> "Submission":
        from autograder.scan import scan

        worlds = {w: _checked(parse(raw.streams.get(w, b""), plan["key"], w), plan) for w in plan["worlds"]}
        _mark_simulation_limits(worlds)
        worlds = {w: _in_gpu_words(world) for w, world in worlds.items()}
        return cls(key, plan["seed"], plan, worlds, raw, scan=scan(plan))

    def review_reasons(self) -> list[str]:
        """Why a person should look at this submission (empty for an honest one that ran through)."""
        reasons: list[str] = []
        if self.broken:
            reasons.append(self.broken)
        if self.tampered:
            reasons.append(self.tampered)
        raw = self.raw
        if raw is not None and raw.killed:
            reasons.append(f"the sandbox was stopped: {raw.killed}")
        for name, world in self.worlds.items():
            label = {"real": "the run on this machine", "counterfactual": "the run with CUDA flipped"}.get(name, name)
            for alert in world.alerts:
                reasons.append(f"{label}: the notebook tried {alert}")
            if world.stopped:
                reasons.append(f"{label} was stopped: {world.stopped}")
            elif not world.done and not world.problem and not (raw is not None and raw.killed):
                last = max(world.cells, default=None)
                where = f" after {self.cell_label(last)}" if last is not None else " before its first cell"
                reasons.append(f"{label} ended early{where} (the notebook's process exited, crashed or ran out of "
                               f"memory{f'; exit status {raw.returncode}' if raw is not None else ''})")
            for index, cell in sorted(world.cells.items()):
                if self.plan["cells"][index].get("hung"):
                    if name == "real":
                        reasons.append(f"{self.cell_label(index)} kept the interpreter busy past the limit for a "
                                       "whole submission and could not be interrupted: graded again without it")
                elif cell.get("status") == "timeout" and name == "real":
                    reasons.append(f"{self.cell_label(index)} ran past its time limit and was stopped")
        reasons += self.scan
        return list(dict.fromkeys(reasons))

    def stuck_cells(self, cell_seconds: float) -> list[int]:
        """The code cells each unfinished world was running when the run was stopped (the next
        cell its evidence was due to report), where that world had sent nothing for longer than a
        cell may take and be stopped: a cell that held the interpreter so that not even the
        grader's thread could stop it (a notebook that was merely slow has none)."""
        stuck: list[int] = []
        for name, world in self.worlds.items():
            if world.done or world.problem or self.raw.quiet.get(name, 0.0) < cell_seconds + 10.0:
                continue
            order, _ = expected_order(self.plan, name)
            due = order[len(world.order)] if len(world.order) < len(order) else None
            if due is not None and due[0] == "cell" and due[1] not in stuck:
                stuck.append(due[1])
        return stuck

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

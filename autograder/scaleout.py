"""Scale-out: the sandbox runs of a class on a Dask distributed cluster (`--scheduler`).

The client (the `autograder autograde` process) reads and plans each submission, sends the
plan to a Dask worker, which runs it in its own sandbox (a warm zygote per worker process where
the worker runs as root, else a fresh bubblewrap sandbox) and returns what came back. The client
judges the evidence and writes the gradebook, so the gradebook keeps a single writer and the
graders never leave the client. Workers need this project installed (`pip install .`),
bubblewrap, and the data file (the stand-in or ~/.medmnist/pneumoniamnist.npz).
"""

from __future__ import annotations

import threading
from typing import Any

from autograder import plan as planning
from autograder import sandbox
from autograder.course import COURSE, Course
from autograder.submission import Submission

_worker_pool: dict[str, Any] = {}
_worker_lock = threading.Lock()


def sandbox_run_on_worker(plan: dict, limits: sandbox.Limits, unsafe: bool) -> sandbox.RawRun:
    """Runs on a Dask worker: one warm zygote per worker process, made on first use."""
    with _worker_lock:
        if "pool" not in _worker_pool:
            _worker_pool["pool"] = sandbox.warm_pool(1, unsafe)
        pool = _worker_pool["pool"]
    with _worker_lock:  # one submission at a time per zygote
        try:
            return sandbox.run(plan, limits, unsafe=unsafe, pool=pool)
        except sandbox.SandboxUnavailable:
            if pool is None:
                raise
            return sandbox.run(plan, limits, unsafe=unsafe)


class DaskRunner:
    """A `runner` for engine.grade_stream that sends each sandbox run to a Dask cluster."""

    def __init__(self, scheduler: str, *, seed: int, limits: sandbox.Limits, unsafe: bool = False,
                 course: Course = COURSE, assignment: str | None = None) -> None:
        from distributed import Client

        from autograder import plugins


        try:
            self.client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise sandbox.SandboxUnavailable(f"cannot reach the Dask scheduler at {scheduler}: {exc}. Start one with "
                                             "`dask scheduler` and workers with `dask worker ADDRESS`.") from None
        self.seed, self.limits, self.unsafe = seed, limits, unsafe
        self.source = planning.SourceOrder.of(
            course, plugins.get(assignment, course) if assignment else plugins.only(course))

    @property
    def slots(self) -> int:
        return max(1, sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values()))

    def run(self, key: str, notebook: Any, slot: int) -> Submission:
        try:
            nb = planning.read_notebook(notebook)
        except planning.NotebookUnreadable as exc:
            return Submission(key, self.seed, broken=f"This submission could not be graded: {exc}")
        the_plan = planning.build(nb, self.seed, self.source, self.limits.cell_seconds)
        raw = self.client.submit(sandbox_run_on_worker, the_plan, self.limits, self.unsafe, pure=False).result()
        raw.notes.append("ran on a Dask worker")
        the_plan["key"] = raw.key
        return Submission.from_run(key, the_plan, raw)

    def close(self) -> None:
        self.client.close()

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
import time
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


REFUSED_SECONDS = 3.0  # how long a scheduler address that refuses connections is tried before saying so


def _refuses(scheduler: str) -> None:
    """Raise ConnectionRefusedError at once when nothing listens at a tcp:// scheduler address (a
    mistyped port, a scheduler not started), after REFUSED_SECONDS of retries for one that is still
    starting, instead of the Client's 20 s of retries. Any other outcome (it answers, or the host is
    far or filtered) is left to the Client and its timeout."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(scheduler if "://" in scheduler else f"tcp://{scheduler}")
    if parts.scheme != "tcp" or parts.hostname is None or parts.port is None:
        return
    deadline = time.monotonic() + REFUSED_SECONDS
    while True:
        try:
            socket.create_connection((parts.hostname, parts.port), timeout=REFUSED_SECONDS).close()
            return
        except ConnectionRefusedError:
            if time.monotonic() >= deadline:
                raise ConnectionRefusedError(f"nothing accepts connections on port {parts.port} of "
                                             f"{parts.hostname}") from None
            time.sleep(0.25)
        except OSError:
            return  # not a plain refusal: the Client tries, and says what it finds


class DaskRunner:
    """A `runner` for engine.grade_stream that sends each sandbox run to a Dask cluster."""

    def __init__(self, scheduler: str, *, seed: int, limits: sandbox.Limits, unsafe: bool = False,
                 course: Course = COURSE, assignment: str | None = None) -> None:
        from distributed import Client

        from autograder import plugins

        try:
            _refuses(scheduler)
            self.client = Client(scheduler, timeout="20s")
        except Exception as exc:  # noqa: BLE001 (whatever answers there, say so rather than crash)
            reason = str(exc) if isinstance(exc, OSError) else \
                f"what answers there does not speak Dask's protocol (reading its reply failed with " \
                f"{type(exc).__name__}: the dashboard's port, 8787 by default, is not the scheduler's, 8786)"
            raise sandbox.SandboxUnavailable(f"cannot reach the Dask scheduler at {scheduler}: {reason}. Start one "
                                             "with `dask scheduler` and workers with `dask worker ADDRESS`.") from None
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

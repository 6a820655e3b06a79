"""A notebook run top to bottom as a student runs it, fast: each notebook in a fresh process forked
from one that has already imported torch (a forkserver), its cells executed in order in one
namespace. What the notebook uses of IPython is stood in for: `get_ipython()` with its
post_run_cell event (the self-checks' helpers listen to it), line magics and shell commands as
no-ops (`%matplotlib inline`, `!pip install ...`).

Used to run the visible self-checks of every notebook of the catalogue (tests/test_self_checks.py);
the subset there also runs in real Jupyter kernels.
"""

from __future__ import annotations

import contextlib
import io
import linecache
import multiprocessing
import os
import signal
import sys
from pathlib import Path

PRELOAD = ["torch", "torchvision", "medmnist", "matplotlib", "nbformat", "tests.student_run"]
NOTEBOOK_SECONDS = 120


def run(path: str, workdir: str) -> dict[str, tuple[str, str] | None]:
    """Each graded cell's outcome: None when it ran through, else (exception type, message)."""
    import matplotlib

    matplotlib.use("Agg")
    import nbformat
    import torch
    from IPython.core.inputtransformer2 import TransformerManager

    import IPython
    from types import SimpleNamespace

    torch.set_num_threads(1)
    shell = _Shell()
    IPython.get_ipython = lambda: shell  # what `from IPython import get_ipython` finds
    signal.alarm(NOTEBOOK_SECONDS)
    os.chdir(workdir)
    nb = nbformat.read(path, as_version=4)
    env: dict = {"__name__": "__main__", "In": [""], "get_ipython": lambda: shell}
    outcomes: dict[str, tuple[str, str] | None] = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        source = cell.source
        env["In"].append(source)
        filename = f"<student cell {index}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        outcome = None
        try:
            try:
                code = compile(source, filename, "exec")
            except SyntaxError:
                code = compile(TransformerManager().transform_cell(source), filename, "exec")
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(code, env)
        except Exception as exc:  # noqa: BLE001 (a student's cell may raise anything)
            sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, exc.__traceback__
            outcome = (type(exc).__name__, str(exc))
        ran = SimpleNamespace(error_in_exec=sys.last_value if outcome else None,
                              info=SimpleNamespace(raw_cell=source, cell_id=cell.get("id") or str(index)))
        for callback in list(shell.events.callbacks["post_run_cell"]):
            callback(ran)
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id and cell.metadata["nbgrader"].get("grade"):
            outcomes[grade_id] = outcome
    return outcomes


class _Events:
    def __init__(self) -> None:
        self.callbacks: dict[str, list] = {"post_run_cell": []}

    def register(self, event: str, callback) -> None:
        self.callbacks.setdefault(event, []).append(callback)


class _Shell:
    def __init__(self) -> None:
        self.events = _Events()
        self.displayhook = type("DisplayHook", (), {"cache_size": 1000})()

    def run_line_magic(self, *args, **kwargs) -> None:
        return None

    def system(self, *args, **kwargs) -> None:
        return None

    getoutput = run_cell_magic = system


def _child(path: str, workdir: str, send) -> None:
    import shutil
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as scratch:  # what the notebook writes stays there
            shutil.copytree(workdir, scratch, dirs_exist_ok=True)
            send.send(run(path, scratch))
    except BaseException as exc:  # noqa: BLE001 (the notebook's process itself failed: say so)
        send.send({"<run>": (type(exc).__name__, str(exc))})


def run_all(paths: list[Path], workdir: Path, processes: int = 2) -> dict[Path, dict]:
    """Every notebook, `processes` at a time, each in a fresh process (nothing carries over; not a
    daemon, so a notebook's DataLoader may start workers as it does in a kernel). A slot is refilled
    as soon as any notebook finishes, so one slow notebook holds one slot, not both."""
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    found: dict[Path, dict] = {}
    waiting, running = list(paths), {}
    while waiting or running:
        while waiting and len(running) < processes:
            path = waiting.pop(0)
            receive, send = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_child, args=(str(path), str(workdir), send))
            child.start()
            send.close()
            running[receive] = (path, child)
        for receive in wait(list(running)):
            path, child = running.pop(receive)
            try:
                found[path] = receive.recv()
            except EOFError:
                found[path] = {"<run>": ("ProcessDied", f"exit status {child.exitcode}")}
            receive.close()
            child.join()
    return found

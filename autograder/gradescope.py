"""Gradescope: the autograder zip, and the run inside Gradescope's container.

    autograder gradescope --out autograder.zip     # build the zip to upload (make gradescope)
    python -m autograder.gradescope                # what the zip's run_autograder runs, per submission

The zip's root holds what Gradescope's autograder specification asks for, `setup.sh` and
`run_autograder` (from autograder/gradescope_files/), and a course directory the engine reads as
its own: this package with its graders, `nbgrader_config.py`, `source/` and `release/` of the
assignment, the pinned requirements (from pyproject.toml) and `gradescope.json` (the seed, and
the visibility the instructor chose for the hidden cases' details).

At run time the isolation is the best the container allows, and results.json says which
(extra_data.isolation): the bubblewrap sandbox where namespaces are permitted; otherwise (Docker's
default seccomp profile refuses them to a container) the notebook runs under an unprivileged uid,
as Gradescope itself advises, with no capabilities and no new privileges (setpriv), a private home
and tmp, the sandbox's rlimits, and the graders, the reference code and the course files
unreadable to it. Where neither is possible (not root), nothing is run and results.json says why.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from autograder.course import COURSE, REPO_ROOT, Course

FILES = Path(__file__).resolve().parent / "gradescope_files"
SCRIPTS = ("setup.sh", "run_autograder")
CONFIG = "gradescope.json"
VISIBILITIES = ("visible", "after_published", "after_due_date", "hidden")
HIDDEN_CASE = "_hidden_cases["  # in the name of each hidden case's test (test_residual_block_shapes_hidden_cases[hidden-N])
TORCH = ("torch", "torchvision")  # installed from PyTorch's CPU-only index
STUDENT_UID = 60999  # the fallback's uid: no account needed, outside the sandbox's own range (61000..64999)
ZIP_TIME = (2026, 1, 1, 0, 0, 0)  # fixed, so the same tree gives the same zip
NO_NOTEBOOK = ("No .ipynb file was found in your submission. Upload your notebook ({notebook}) itself, "
               "not a folder or an archive of it.")
SEVERAL_NOTEBOOKS = ("Your submission holds {count} notebooks ({names}). Upload only {notebook}, then submit again.")
CANNOT_ISOLATE = ("The autograder could not run your notebook safely on this machine, so it was not graded; "
                  "your instructor has been told.")


class BundleError(RuntimeError):
    """The zip cannot be built (say what is missing and what to do)."""


@dataclass(frozen=True)
class Layout:
    """Gradescope's fixed folders (its specification), in one place."""

    root: Path = Path("/autograder")

    @property
    def source(self) -> Path:  # the unpacked zip
        return self.root / "source"

    @property
    def submission(self) -> Path:
        return self.root / "submission"

    @property
    def results(self) -> Path:
        return self.root / "results" / "results.json"

    @property
    def work(self) -> Path:  # this run's private folders (made by run)
        return self.root / "nb10-run"


# --- building the zip ---------------------------------------------------------------------------


def requirements() -> tuple[list[str], list[str]]:
    """This package's pinned dependencies (pyproject.toml): (torch and torchvision, the rest)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise BundleError("building the zip needs Python 3.11 or later (tomllib reads pyproject.toml).") from None
    pyproject = REPO_ROOT / "pyproject.toml"
    if not pyproject.is_file():
        raise BundleError(f"{pyproject} is missing: build the zip from a checkout of this repository.")
    deps = list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])
    torch = [d for d in deps if re.split(r"[<>=!~;\s\[]", d, maxsplit=1)[0] in TORCH]
    return torch, [d for d in deps if d not in torch]


def bundle_files(course: Course = COURSE, assignment: str | None = None) -> dict[str, Path]:
    """Name in the zip -> file here: the package (graders included), config, source and release."""
    assignment = assignment or course.first_assignment
    files: dict[str, Path] = {name: FILES / name for name in SCRIPTS}
    files["nbgrader_config.py"] = course.config_file
    package = Path(__file__).resolve().parent
    from autograder import plugins

    plugin = plugins.get(assignment, course)
    folders = [package, plugin.folder]  # the engine, and the assignment's plug-in (its graders)
    for folder in folders:
        top = package.parent if folder == package else plugin.folder.parent.parent
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files[str(path.relative_to(top))] = path
    init = plugin.folder.parent / "__init__.py"
    if init.is_file():
        files[f"{plugins.PACKAGE}/__init__.py"] = init
    for folder in (course.source(assignment), course.release(assignment)):
        if not folder.is_dir():
            raise BundleError(f"{folder} is missing: the zip needs the assignment's source and its release "
                              "(make release).")
        for path in sorted(folder.rglob("*")):
            if path.is_file() and ".ipynb_checkpoints" not in path.parts:
                files[str(path.relative_to(course.root))] = path
    return files


def build(*, out: Path, course: Course = COURSE, assignment: str | None = None, settings=None,
          hidden: str = "after_published") -> Path:
    """Write the autograder zip for `assignment` to `out`; return its path. `settings`: a
    GradingConfig (default: the course's c.GradingConfig); Gradescope grades with its seed and
    limits (whether the sandbox is used is decided there, by what the container allows)."""
    assignment = assignment or course.first_assignment
    from autograder import gradingconfig

    if hidden not in VISIBILITIES:
        raise BundleError(f"--hidden must be one of {', '.join(VISIBILITIES)}, not {hidden!r}.")
    if settings is None:
        settings = gradingconfig.load(course.config_file)
    torch, rest = requirements()
    limits = {k: v for k, v in settings.settings().items() if k != "unsafe_no_sandbox"}
    config = {"assignment": assignment, "seed": settings.seed, "hidden_visibility": hidden, "settings": limits}
    generated = {"requirements-torch.txt": "\n".join(torch) + "\n", "requirements.txt": "\n".join(rest) + "\n",
                 CONFIG: json.dumps(config, indent=2) + "\n"}
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in bundle_files(course, assignment).items():
            _add(archive, name, path.read_bytes(), executable=name in SCRIPTS)
        for name, text in generated.items():
            _add(archive, name, text.encode(), executable=False)
    return out


def _add(archive: zipfile.ZipFile, name: str, data: bytes, *, executable: bool) -> None:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


# --- grading one submission in Gradescope's container -------------------------------------------


@dataclass(frozen=True)
class Isolation:
    description: str
    unsafe: bool = False  # the sandbox's own unsafe path, started through the student launcher
    refused: bool = False


def choose_isolation() -> Isolation:
    """The bubblewrap sandbox where it starts; else, as root, the unprivileged-uid fallback."""
    from autograder import sandbox

    try:
        return Isolation(f"sandbox: bubblewrap ({sandbox.check_available()})")
    except sandbox.SandboxUnavailable as exc:
        why = str(exc).split(" To grade without isolation")[0]
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return Isolation(f"none possible: {why}; and the fallback needs root and setpriv", refused=True)
    return Isolation(f"fallback (no namespaces here: {why}): the notebook ran as uid {STUDENT_UID} with no "
                     "capabilities and no new privileges (setpriv), a private home and tmp, the sandbox's rlimits "
                     "and seccomp filter; the graders, reference code and course files unreadable to it; no network "
                     "isolation, no PID namespace", unsafe=True)


def find_notebook(folder: Path, notebook: str) -> tuple[Path | None, str | None]:
    """The one notebook of the submission, or the student's message saying what to upload."""
    found = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and p.is_file())
    if len(found) > 1:
        named = [p for p in found if p.name == notebook]
        if len(named) == 1:
            return named[0], None
        return None, SEVERAL_NOTEBOOKS.format(count=len(found), names=", ".join(p.name for p in found[:5]),
                                              notebook=notebook)
    if not found:
        return None, NO_NOTEBOOK.format(notebook=notebook)
    return found[0], None


def lock_down(layout: Layout) -> None:
    """Course, graders and submission behind folders only root may enter (the files keep their
    modes: the sandbox copies its own modules from there, and the copies must stay readable);
    /autograder itself traversable but not listable: the student's uid reaches the venv and the
    data stand-in by their paths, and cannot look for anything else."""
    for folder in (layout.source, layout.submission):
        folder.chmod(0o700)
    layout.root.chmod(0o711)
    layout.results.parent.mkdir(parents=True, exist_ok=True)
    layout.results.parent.chmod(0o755)


def student_launcher(work: Path) -> Path:
    """A launcher that starts the sandbox-side runner as STUDENT_UID, in a private home and tmp.

    sandbox.py's unsafe path starts the runner as `sys.executable -I -c ...` with the rlimits
    applied; run() points sys.executable at this script for that one call, so the runner, the
    notebook and everything it starts run as the student's uid, the same protocol otherwise."""
    home, tmp = work / "student" / "home", work / "student" / "tmp"
    for folder in (work / "student", home, tmp):
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, STUDENT_UID, STUDENT_UID)
        folder.chmod(0o700)
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    script = work / "student-python"
    script.write_text(
        "#!/bin/sh\n"
        f"cd {home} || exit 70\n"
        f"exec {setpriv} --reuid={STUDENT_UID} --regid={STUDENT_UID} --clear-groups --inh-caps=-all "
        f"--bounding-set=-all --no-new-privs -- /usr/bin/env HOME={home} TMPDIR={tmp} MPLCONFIGDIR={tmp}/mpl "
        f"{sys.executable} \"$@\"\n")
    script.chmod(0o755)
    return script


def kill_student_processes() -> None:
    """Without a PID namespace, a daemon the notebook left behind would outlive the run: kill every
    process of the student's uid (kill -1 sent as that uid reaches exactly those)."""
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    for _ in range(3):  # a fork bomb's last forks may land after a sweep
        subprocess.run([setpriv, f"--reuid={STUDENT_UID}", f"--regid={STUDENT_UID}", "--clear-groups", "kill",
                        "-9", "-1"], capture_output=True, check=False)


def refusal(output: str, extra: dict) -> dict:
    """results.json for a submission that was not graded: zero, the reason for the student."""
    return {"score": 0.0, "execution_time": 0.0, "output": output, "output_format": "text", "visibility": "visible",
            "tests": [], "extra_data": dict(extra, needs_review=True)}


def run(layout: Layout = Layout()) -> int:
    """Grade the submission in layout.submission; write layout.results. 0 once results.json is written."""
    started = time.perf_counter()
    config = json.loads((layout.source / CONFIG).read_text())
    lock_down(layout)
    notebook, problem = find_notebook(layout.submission, f"{config['assignment']}.ipynb")
    if notebook is None:
        return _write(layout, refusal(str(problem), {"seed": config["seed"]}))
    isolation = choose_isolation()
    if isolation.refused:
        return _write(layout, refusal(CANNOT_ISOLATE, {"seed": config["seed"], "isolation": isolation.description}))
    data = grade(notebook, layout, isolation, seed=int(config["seed"]), hidden=config["hidden_visibility"],
                 settings=config.get("settings") or {}, assignment=str(config["assignment"]))
    data["execution_time"] = round(time.perf_counter() - started, 3)
    return _write(layout, data)


def grade(notebook: Path, layout: Layout, isolation: Isolation, *, seed: int, hidden: str,
          settings: dict | None = None, assignment: str | None = None) -> dict:
    """Grade with the engine, as `autograder grade` does; results.json's content. `settings`: the
    bundle's grading limits, in GradingConfig's names."""
    from autograder import engine, gradingconfig, results, sandbox

    limits = gradingconfig.from_config(None, **(settings or {})).limits()

    if layout.work.exists():
        shutil.rmtree(layout.work)
    layout.work.mkdir(mode=0o711)
    grader_tmp = layout.work / "grader-tmp"  # the sandbox-side modules' copy goes here: traversable, not listable
    grader_tmp.mkdir(mode=0o711)
    tempfile.tempdir = str(grader_tmp)
    executable = sys.executable
    if isolation.unsafe:
        sys.executable = str(student_launcher(layout.work))
    try:
        result = engine.grade({notebook.name: notebook.read_bytes()}, seed=seed, limits=limits,
                              unsafe=isolation.unsafe, assignment=assignment)[notebook.name]
    finally:
        sys.executable = executable
        if isolation.unsafe:
            kill_student_processes()
    data = results.gradescope(result, isolation=isolation.description)
    # not one of Gradescope's documented top-level fields (the assignment's points are set there)
    data["extra_data"]["max_score"] = data.pop("max_score")
    notes = data["extra_data"]["notes"]
    data["extra_data"]["notes"] = [n for n in notes if not n.startswith("WARNING: graded WITHOUT the sandbox")]
    data["extra_data"]["peak_rss_bytes"] = {  # Linux reports KiB
        "grader": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "largest_sandbox_process": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}
    for test in data["tests"]:
        if HIDDEN_CASE in test["name"]:
            test["visibility"] = hidden
    print(results.summary_text(result))
    print(f"isolation: {isolation.description}")
    for note in data["extra_data"]["notes"]:
        print(f"note: {note}")
    if result.problem:
        print(f"needs review: {result.problem}")
    return data


def _write(layout: Layout, data: dict) -> int:
    layout.results.parent.mkdir(parents=True, exist_ok=True)
    layout.results.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {layout.results}")
    return 0


if __name__ == "__main__":
    sys.exit(run())

"""Assignments as plug-ins: what is specific to one assignment lives in its own folder.

An assignment `ID` is graded when a folder `assignments/ID/` holds its plug-in (found in the course
directory first, then beside this package): an ``__init__.py`` that says

* ``NOTEBOOK``: the notebook's file name (``ID.ipynb`` when left out);
* ``ITEMS``: item key -> the grade id of the test cell that holds the item's points, in order;
* ``GRADERS``: the grader modules in its ``graders/`` folder (pytest tests taking a ``submission``,
  each with ``CELL``, ``WORLDS`` and ``probes(seed)``), named after what they check, never
  ``test_*.py`` (so that a plain ``pytest`` run does not collect them without their fixture);
* ``SELF_CHECKS`` (optional): files of the folder that the release's helper cell holds, when the
  source notebook imports ``assignments.ID.selfcheck`` (autograder/inlineselfchecks.py);
* ``SANDBOX`` (optional): files of the folder that run in the sandbox, beside the notebook:
  ``probes.py`` (``PREPARE``: op -> seeded values made before any notebook code; ``OPS``: op ->
  ``fn(spec, pre, ctx, blobs, cls)`` returning plain data) and the modules it imports relatively
  (its seeded-parameter contract, also imported by the graders). In the sandbox they are the
  package ``nb10_sandbox.plugins.ID``; probes.py runs privately, as autograder/sandboxed/probe.py does, and
  may import probe.py's helpers (``from ...probe import field``).

The engine, the planner, the results, the report and both doors take an assignment id and ask
this module; the instructor's source notebook stays in ``source/ID/`` as nbgrader wants it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.course import REPO_ROOT, Course

PACKAGE = "assignments"  # the plug-ins' import name: assignments.ID.graders...


class NoPlugin(LookupError):
    """The assignment has no plug-in: nothing can grade it. The message says what to do."""


@dataclass(frozen=True)
class Plugin:
    id: str
    folder: Path
    notebook: str
    items: dict[str, str]  # item key -> test cell grade id
    graders: tuple[str, ...]
    self_checks: tuple[str, ...] = ()  # files inlined into the release's helper cell (inlineselfchecks.py)
    sandbox_files: tuple[str, ...] = ()  # files of the sandbox side: probes.py (PREPARE, OPS) and what it imports

    @property
    def module(self) -> str:
        return f"{PACKAGE}.{self.id}"

    def load(self) -> types.ModuleType:
        """The plug-in's own module (its __init__.py)."""
        return importlib.import_module(self.module)

    def grader_modules(self) -> list[Any]:
        return [importlib.import_module(f"{self.module}.graders.{name}") for name in self.graders]

    def grader_files(self) -> list[Path]:
        return [self.folder / "graders" / f"{name}.py" for name in self.graders]

    def item_of_cell(self, grade_id: str) -> str | None:
        return next((item for item, cell in self.items.items() if cell == grade_id), None)


def _roots(course: Course | None) -> list[Path]:
    roots = [] if course is None else [course.root / PACKAGE]
    return [r for r in dict.fromkeys(roots + [REPO_ROOT / PACKAGE]) if r.is_dir()]


def _load(assignment: str, folder: Path) -> types.ModuleType:
    """assignments.ID from its folder (its graders then import as assignments.ID.graders.NAME)."""
    if PACKAGE not in sys.modules:
        package = types.ModuleType(PACKAGE, "Assignment plug-ins (autograder.plugins)")
        package.__path__ = []  # type: ignore[attr-defined]
        sys.modules[PACKAGE] = package
    name = f"{PACKAGE}.{assignment}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return module


def known(course: Course | None = None) -> list[str]:
    """The ids of the assignments that have a plug-in."""
    return sorted({p.parent.name for root in _roots(course) for p in root.glob("*/__init__.py")})


_loaded: dict[tuple[str, str], Plugin] = {}


def get(assignment: str, course: Course | None = None) -> Plugin:
    """The plug-in of `assignment`; NoPlugin says why there is none and what there is."""
    folder = next((root / assignment for root in _roots(course) if (root / assignment / "__init__.py").is_file()), None)
    if folder is None or not assignment.isidentifier():
        have = ", ".join(known(course)) or "none"
        raise NoPlugin(f"no hidden graders for assignment {assignment!r}: its plug-in folder "
                       f"{PACKAGE}/{assignment}/ (with __init__.py and graders/) is missing. Assignments with "
                       f"graders: {have}.")
    key = (str(folder), assignment)
    if key not in _loaded:
        module = _load(assignment, folder)
        items = dict(getattr(module, "ITEMS", {}))
        graders = tuple(getattr(module, "GRADERS", ()))
        if not items or not graders:
            raise NoPlugin(f"{folder}/__init__.py must set ITEMS (item -> test cell id) and GRADERS (module names).")
        _loaded[key] = Plugin(assignment, folder, getattr(module, "NOTEBOOK", f"{assignment}.ipynb"), items, graders,
                              tuple(getattr(module, "SELF_CHECKS", ())), tuple(getattr(module, "SANDBOX", ())))
    return _loaded[key]


def loadable(course: Course | None = None) -> list[Plugin]:
    """The plug-ins that load (one that does not is left out here: it can grade nothing, and is
    refused with its reason where its assignment is asked for by name)."""
    found = []
    for assignment in known(course):
        try:
            found.append(get(assignment, course))
        except Exception:
            continue
    return found


def only(course: Course | None = None) -> Plugin:
    """The course's one graded assignment, for callers that name none; NoPlugin where it has several."""
    ids = known(course)
    if len(ids) != 1:
        raise NoPlugin(f"name the assignment to grade: this course has {len(ids)} with graders ({', '.join(ids)}).")
    return get(ids[0], course)


def of_notebook(path: Path, course: Course | None = None) -> str:
    """The assignment a notebook file is of: by its name (notebook10.ipynb, notebook10-Copy1.ipynb),
    its folder's (submitted/alice/notebook10/), or the test cells it holds (nbgrader keeps their ids);
    else the course's only graded one. NoPlugin where none of these says."""
    ids = known(course)
    for name in (path.name.rsplit(".", 1)[0], path.parent.name):
        named = [i for i in ids if name == i or name.startswith(f"{i}-") or name.startswith(f"{i} ")]
        if len(named) == 1:
            return named[0]
    try:
        import json

        cells = json.loads(path.read_bytes()[:50_000_000]).get("cells", [])
        held = {str(((c.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")) for c in cells
                if isinstance(c, dict)}
    except (OSError, ValueError, AttributeError):
        held = set()
    holding = [p.id for p in loadable(course) if set(p.items.values()) <= held]
    if len(holding) == 1:
        return holding[0]
    return only(course).id

"""Plain checks of the package's boundaries, read from the source (no grading runs here).

1. The sandbox side (the package autograder/sandboxed/, copied into the sandbox as a package of
   its own) imports nothing of the trusted side: in the sandbox only its files exist.
2. The trusted side imports from the sandbox side only the wire protocol (the zygote's request
   and its two answers, the file-system layout) and what both sides share on purpose: the data
   stand-in (standin.py) and, for an assignment, its seeded-parameter contract.
3. The engine names no assignment: an assignment lives in its plug-in folder (assignments/ID/).
"""

import ast
import io
import tokenize
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.course import REPO_ROOT

PACKAGE = REPO_ROOT / "autograder"
SANDBOXED = PACKAGE / "sandboxed"
SANDBOX_SIDE = {Path(name).stem for name in sandbox.BUNDLE_FILES}
SHARED = {"standin"}  # imported by both sides on purpose (see the module docstring)
PROTOCOL = {"zygote": {"send_request", "SETUP_ERROR", "SETUP_FAILED"}}
WIRE = {"layout"}  # a module that is all protocol: the file-system layout a request carries (typed steps)
# A trusted-side helper inside a sandbox-side file, run only by the CLI outside the sandbox
# (`python -m autograder.sandboxed.standin setup`): where the course keeps its data.
SANDBOX_SIDE_EXCEPTIONS = {("standin", "autograder.course")}


def _imports(path: Path):
    """(module imported from, names) for every import in the file, nested ones included."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, set()
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            yield base, {alias.name for alias in node.names}


def _trusted_files() -> list[Path]:
    files = [p for p in PACKAGE.rglob("*.py") if SANDBOXED not in p.parents]
    return files + sorted((REPO_ROOT / "assignments").rglob("*.py"))


@pytest.mark.parametrize("name", sorted(SANDBOX_SIDE))
def test_the_sandbox_side_imports_nothing_of_the_trusted_side(name):
    bad = []
    for module, names in _imports(SANDBOXED / f"{name}.py"):
        if module.startswith("."):
            targets = {module.lstrip(".")} if module.strip(".") else names
            bad += [f"{module} {sorted(names)}" for t in targets if t not in SANDBOX_SIDE]
        elif module.split(".")[0] in ("autograder", "assignments") and (name, module) not in SANDBOX_SIDE_EXCEPTIONS:
            bad.append(module)
    assert bad == [], f"{name}.py imports what the sandbox does not hold: {bad}"


def test_an_assignments_sandbox_side_imports_only_the_sandbox_package():
    """Its files are all the sandbox holds of it: relative imports (its own files, probe.py's helpers), never
    the trusted side's; and no trusted module imports its probes."""
    from autograder import plugins

    bad = []
    for assignment in plugins.known():
        plugin = plugins.get(assignment)
        for name in plugin.sandbox_files:
            for module, _ in _imports(plugin.folder / name):
                if module.split(".")[0] in ("autograder", "assignments"):
                    bad.append(f"{assignment}/{name}: {module}")
        probes = f"assignments.{assignment}.probes"
        for path in _trusted_files():
            if path.parent != plugin.folder or path.name not in plugin.sandbox_files:
                bad += [f"{path.relative_to(REPO_ROOT)}: {m}" for m, _ in _imports(path) if m == probes]
    assert bad == []


def test_the_trusted_side_imports_only_the_protocol_and_the_shared_contract_from_the_sandbox_side():
    found = []
    for path in _trusted_files():
        for module, names in _imports(path):
            if module.startswith("autograder.sandboxed."):
                used = {module.split(".")[2]: names}
            elif module == "autograder.sandboxed":
                used = {n: {"*"} for n in names}
            else:
                continue
            for side_module, side_names in used.items():
                allowed = side_module in SHARED | WIRE or side_names <= PROTOCOL.get(side_module, set())
                if not allowed:
                    found.append(f"{path.relative_to(REPO_ROOT)}: {side_module} {sorted(side_names)}")
    assert found == [], "trusted code imports sandbox-side code beyond the protocol:\n" + "\n".join(found)


def _code_words(path: Path) -> str:
    """The file's code without its comments and docstrings (strings that are a statement of their own)."""
    source = path.read_text()
    docs = {(node.value.lineno, node.value.col_offset) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}
    kept = [tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type != tokenize.COMMENT and not (tok.type == tokenize.STRING and tok.start in docs)]
    return " ".join(kept)


def test_no_engine_module_names_an_assignment():
    """Outside docstrings and comments, no module of the engine (autograder/, the sandbox side
    included) contains an assignment's id: what is specific to one lives in assignments/ID/."""
    ids = sorted(p.name for p in (REPO_ROOT / "assignments").iterdir() if (p / "__init__.py").is_file())
    assert ids, "no assignment plug-in found"
    naming = {f"{p.relative_to(REPO_ROOT)}: {i}" for p in PACKAGE.rglob("*.py") for i in ids if i in _code_words(p)}
    assert naming == set(), f"engine modules that name an assignment: {sorted(naming)}"


def test_a_grader_module_is_never_named_like_a_test():
    """`pytest assignments/` must not collect graders without their submission fixture."""
    named = sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "assignments").glob("*/graders/test_*.py"))
    assert named == []

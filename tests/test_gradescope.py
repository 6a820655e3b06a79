"""The Gradescope bundle: `autograder gradescope` builds the zip, and the zip's own setup.sh and
run_autograder grade real notebooks in an emulated Gradescope root (scripts/gradescope_emulate.py:
bubblewrap bind mounts give /autograder/source, /submission and /results their real paths), with
the full sandbox and with the fallback a container without namespaces gets, each scoring what
`autograder grade` scores."""

from __future__ import annotations

import importlib.util
import json
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from autograder import cli
from autograder.gradescope import HIDDEN_CASE
from tests.conftest import CASES, EXPECTED

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("gradescope_emulate", REPO / "scripts" / "gradescope_emulate.py")
emulator = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(emulator)

# Gradescope's documented results.json fields (its autograder specification) and their values
TOP_LEVEL = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
             "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
TEST_FIELDS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
               "visibility", "extra_data"}
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}

CORRECT = "correct/correct_solution_as_released_success_score_full.ipynb"
BUGGY = "bugs/bug_no_padding_score_partial.ipynb"
HOSTILE = "hostile/hostile_reads_grader_files_and_solutions_score_zero_for_blocks.ipynb"  # globs /autograder/**

needs_root_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None or __import__("os").geteuid() != 0,
                                      reason="the emulated Gradescope root is made with bubblewrap, as root")


def build(tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "autograder.zip"
    assert cli.main(["gradescope", "--out", str(out), *extra]) == 0
    return out


def test_the_zip_holds_what_gradescopes_specification_asks_for(tmp_path):
    bundle = build(tmp_path, "--hidden", "hidden")
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
        config = json.loads(archive.read("gradescope.json"))
        torch = archive.read("requirements-torch.txt").decode().split()
        rest = archive.read("requirements.txt").decode()
        archive.extractall(tmp_path / "source")
    assert {"setup.sh", "run_autograder"} <= names  # at the root, not under a folder
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    assert {"assignments/notebook10/graders/shortcut_projection.py", "autograder/engine.py", "nbgrader_config.py",
            "source/notebook10/notebook10.ipynb", "release/notebook10/notebook10.ipynb"} <= names
    assert not any("__pycache__" in n for n in names)
    settings = config.pop("settings")
    assert config == {"assignment": "notebook10", "seed": 20261126, "hidden_visibility": "hidden"}
    assert settings["cell_seconds"] == 30.0 and settings["gpu"] == "auto"  # the course's (nbgrader_config.py)
    assert torch == ["torch==2.14.1", "torchvision==0.29.1"]
    assert "nbgrader==0.9.6" in rest and "torch" not in rest
    for script in ("setup.sh", "run_autograder"):
        check = subprocess.run(["bash", "-n", str(tmp_path / "source" / script)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def test_the_zip_is_the_same_bytes_when_built_twice(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert build(tmp_path / "a").read_bytes() == build(tmp_path / "b").read_bytes()


def test_an_unknown_visibility_is_refused_with_the_choices(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["gradescope", "--out", str(tmp_path / "x.zip"), "--hidden", "sometimes"])
    assert "after_published" in capsys.readouterr().err


def check_documented_fields(data: dict) -> None:
    assert set(data) <= TOP_LEVEL, set(data) - TOP_LEVEL
    assert isinstance(data["score"], float) and isinstance(data["execution_time"], float)
    assert data["output_format"] in FORMATS and data["visibility"] in VISIBILITY
    assert isinstance(data["output"], str) and data["output"].startswith("Score: ")
    assert isinstance(data["extra_data"], dict) and len(data["tests"]) > 0
    for test in data["tests"]:
        assert set(test) <= TEST_FIELDS, set(test) - TEST_FIELDS
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert 0 <= test["score"] <= test["max_score"]
        assert test["status"] == ("passed" if test["score"] >= test["max_score"] else "failed")
        assert test["visibility"] in VISIBILITY and test["output_format"] in FORMATS
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]), abs=1e-3)


def item_scores(data: dict) -> dict[str, float]:
    return {item: v["score"] for item, v in data["extra_data"]["items"].items()}


@pytest.mark.slow
@needs_root_bwrap
@pytest.mark.parametrize("case", [pytest.param(CORRECT, id="correct"), pytest.param(BUGGY, id="buggy"),
                                  pytest.param(HOSTILE, id="hostile-reads-autograder-folder")])
def test_the_emulated_gradescope_run_scores_as_autograder_grade_with_and_without_namespaces(case, tmp_path):
    notebook = CASES / case
    graded = tmp_path / "grade.json"
    assert cli.main(["grade", str(notebook), "-o", str(graded)]) == 0
    reference = json.loads(graded.read_text())
    bundle = build(tmp_path)
    for namespaces, isolation in ((True, "sandbox: bubblewrap"), (False, "fallback (no namespaces here")):
        work = tmp_path / f"root-{namespaces}"
        work.mkdir()
        run = emulator.emulate(bundle, notebook, namespaces=namespaces, work=work)
        assert run["returncode"] == 0, run["stderr"][-2000:]
        data = run["results"]
        check_documented_fields(data)
        assert data["extra_data"]["isolation"].startswith(isolation)
        assert item_scores(data) == EXPECTED[case]["expect"] == item_scores(reference)
        assert {t["name"]: t["score"] for t in data["tests"]} == {t["name"]: t["score"] for t in reference["tests"]}
        assert bool(data["extra_data"]["needs_review"]) == EXPECTED[case]["review"]
        assert data["extra_data"]["seed"] == reference["extra_data"]["seed"]
        hidden = [t for t in data["tests"] if HIDDEN_CASE in t["name"]]
        assert len(hidden) == 9 and {t["visibility"] for t in hidden} == {"after_published"}
        assert {t["visibility"] for t in data["tests"] if t not in hidden} == {"visible"}
        assert "WITHOUT the sandbox" not in json.dumps(data)
        assert data["output"] == reference["output"]


@pytest.mark.slow
@needs_root_bwrap
def test_a_submission_without_a_notebook_gets_a_zero_that_says_what_to_upload(tmp_path):
    stray = tmp_path / "answers.txt"
    stray.write_text("I did it on paper")
    work = tmp_path / "root"
    work.mkdir()
    run = emulator.emulate(build(tmp_path), stray, namespaces=False, work=work)
    assert run["returncode"] == 0, run["stderr"][-2000:]
    data = run["results"]
    assert set(data) <= TOP_LEVEL and data["score"] == 0.0 and data["tests"] == []
    assert "No .ipynb file was found in your submission" in data["output"]
    assert data["extra_data"]["needs_review"] is True

"""One configuration: c.GradingConfig in nbgrader_config.py means the same through both doors, and
a flag overrides it for one run. Each setting used is written into results.json."""

import json
import os
from pathlib import Path

import nbformat
import pytest

from autograder import assignment, cli, gradingconfig, sandbox
from assignments.notebook10 import NOTEBOOK
from tests.conftest import CASES, make_class

SETTINGS = {"seed": 7, "cell_seconds": 4.0, "submission_seconds": 90.0, "memory_mb": 3072, "address_space_mb": 6144,
            "cpus": 1.5, "cpu_seconds": 240, "processes": 200, "gpu": "off"}


def test_each_setting_becomes_the_sandbox_limit_of_the_same_name():
    settings = gradingconfig.from_config(None, **SETTINGS)
    limits = settings.limits()
    assert limits == sandbox.Limits(cell_seconds=4.0, submission_seconds=90.0, memory_bytes=3072 << 20,
                                    address_space_bytes=6144 << 20, cpus=1.5, cpu_seconds=240, processes=200,
                                    gpu=False)
    assert settings.settings() == {**{k: v for k, v in SETTINGS.items() if k != "seed"}, "unsafe_no_sandbox": False}
    assert gradingconfig.from_config(None).limits() == sandbox.Limits()  # the defaults are the sandbox's


def test_the_old_sandboxautograde_names_still_count_and_gradingconfig_and_flags_win():
    from traitlets.config import Config

    config = Config()
    config.SandboxAutograde.seed = 3
    config.SandboxAutograde.cell_seconds = 5.0
    config.GradingConfig.cell_seconds = 6.0
    settings = gradingconfig.from_config(config)
    assert (settings.seed, settings.cell_seconds) == (3, 6.0)
    assert gradingconfig.from_config(config, seed=11, cell_seconds=None).seed == 11


@pytest.mark.parametrize("setting, value, said", [
    pytest.param("cell_seconds", 0, "cell_seconds must be greater than 0", id="zero-seconds"),
    pytest.param("gpu", "sometimes", "wrong value", id="unknown-gpu-policy"),
    pytest.param("processes", "many", "wrong value", id="not-a-number"),
])
def test_a_setting_out_of_range_is_refused_with_its_name(setting, value, said):
    with pytest.raises(gradingconfig.ConfigError, match=said):
        gradingconfig.from_config(None, **{setting: value})


def test_a_broken_config_file_is_named_in_the_cli_error(tmp_path, capsys):
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\nc.GradingConfig.cell_seconds = 'soon'\n")
    notebook = tmp_path / "x.ipynb"
    notebook.write_text("{}")
    assert cli.main(["grade", str(notebook), "--course", str(tmp_path)]) == 2
    assert "cell_seconds" in capsys.readouterr().err


def _sleepy_notebook(path: Path) -> Path:
    """The correct notebook with a last cell that sleeps 6 s: past a 4 s cell limit, within 12 s."""
    nb = nbformat.read(CASES / "correct/correct_solution_as_released_success_score_full.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import time\ntime.sleep(6)\nprint('rested')"))
    nbformat.write(nb, path)
    return path


def _recorded(path: Path) -> dict:
    extra = json.loads(path.read_text())["extra_data"]
    return {"seed": extra["seed"], "settings": extra["settings"], "timed_out": len(extra["timed_out"])}


@pytest.mark.slow
def test_both_doors_grade_with_the_courses_settings_and_a_flag_overrides_them(tmp_path):
    sleepy = _sleepy_notebook(tmp_path / "sleepy.ipynb")
    (tmp_path / "course").mkdir()
    course = make_class(tmp_path / "course", {"sam": sleepy})
    course.config_file.write_text(course.config_file.read_text() + "\n" + "".join(
        f"c.GradingConfig.{k} = {v!r}\n" for k, v in SETTINGS.items()))
    assignment.add_students(["sam"], course)
    expected = {"seed": 7, "settings": {**{k: v for k, v in SETTINGS.items() if k != "seed"},
                                        "unsafe_no_sandbox": False}, "timed_out": 1}

    assert cli.main(["autograde", "notebook10", "--course", str(course.root), "--force"]) == 0
    ours = _recorded(course.results("sam"))
    assert assignment.autograde(course, "notebook10", "--force").ok
    nbgraders = _recorded(course.results("sam"))
    assert ours == nbgraders == expected

    out = tmp_path / "flags.json"
    assert cli.main(["grade", str(course.submitted("sam") / NOTEBOOK), "--course", str(course.root), "-o", str(out),
                     "--seed", "9", "--cell-seconds", "12"]) == 0
    assert _recorded(out) == {"seed": 9, "settings": {**expected["settings"], "cell_seconds": 12.0}, "timed_out": 0}


_COUNT_ZYGOTES = """
import os as _os


def _zygotes_of_this_process():
    found = 0
    for pid in _os.listdir("/proc"):
        try:
            with open(f"/proc/{{pid}}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{{pid}}/cmdline", "rb") as f:
                found += ppid == _os.getpid() and b"zygote.serve" in f.read()
        except (OSError, ValueError, IndexError):
            pass
    return found


with open({probe!r}, "a") as _f:
    _f.write(f"{{_zygotes_of_this_process()}}\\n")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the warm sandbox (zygotes) needs root")
@pytest.mark.parametrize("workers", [None, 1], ids=["workers-not-set", "workers-set-in-the-course"])
def test_the_first_zygote_starts_before_the_courses_settings_are_read_and_fits_them(tmp_path, workers):
    """Reading the course's settings runs its nbgrader_config.py, which imports nbgrader: seconds
    that the first zygote (importing torch) spends starting meanwhile. A course that asks for
    another number of workers gets a pool of that many, still warm."""
    (tmp_path / "course").mkdir()
    course = make_class(tmp_path / "course", {"sam": "correct/correct_solution_as_released_success_score_full.ipynb"})
    assignment.add_students(["sam"], course)
    probe = tmp_path / "zygotes-when-the-settings-were-read.txt"
    course.config_file.write_text(course.config_file.read_text() + _COUNT_ZYGOTES.format(probe=str(probe)) +
                                  (f"c.GradingConfig.workers = {workers}\n" if workers else ""))
    assert cli.main(["autograde", "notebook10", "--course", str(course.root), "--force"]) == 0
    assert probe.read_text().split()[0] == "1"  # the first reading is the command's own, before any grading
    recorded = json.loads(course.results("sam").read_text())
    assert "sandbox: warm (forked from a zygote)" in recorded["extra_data"]["notes"]
    assert recorded["score"] == 10

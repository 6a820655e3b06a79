"""Notebook 11's hidden graders, end to end: the catalogue (submissions/build.py) graded for real, in
the sandbox, by autograder.engine.grade; and the seeded contract both sides share.

Run: .venv/bin/python -m pytest -q assignments/notebook11/tests/test_notebook11_grading.py
(about a minute on two shared cores: each notebook runs its cells, training included, in two
worlds, forked from warm zygotes two at a time). NB11_CATALOGUE=all also grades the extra cases.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
import torch

HERE = Path(__file__).resolve().parent
FOLDER = HERE.parent

sys.path.insert(0, str(HERE / "submissions"))

import build as catalogue  # noqa: E402  (submissions/build.py; the graded fixture is in conftest.py)

from autograder import engine, plugins  # noqa: E402

plugins.get("notebook11")  # registers assignments.notebook11 (its graders import it by that name)

from assignments.notebook11 import reference, seeded  # noqa: E402
from assignments.notebook11 import unet_reference as ref  # noqa: E402


def _explain(result: engine.Result) -> str:
    return "\n".join(f"  {t.name}: {t.score}/{t.max_score} {t.output[:300]}" for t in result.tests
                     if t.score < t.max_score)


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in catalogue.FAST])
def test_each_catalogue_notebook_loses_points_only_in_its_items(graded, name):
    result = graded[name]
    got = {item: score for item, (score, _) in result.item_scores().items()}
    assert got == catalogue.CASES[name][1], f"{name}: {got}\n{_explain(result)}"
    assert result.internal_errors == [], result.internal_errors
    assert result.problem is None, result.problem


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NB11_CATALOGUE") != "all", reason="the extra cases: NB11_CATALOGUE=all")
def test_the_extra_catalogue_notebooks_score_as_expected():
    results = catalogue.grade(sorted(catalogue.EXTRA))
    for name, result in results.items():
        got = {item: score for item, (score, _) in result.item_scores().items()}
        assert got == catalogue.CASES[name][1], f"{name}: {got}\n{_explain(result)}"
        assert result.internal_errors == [], result.internal_errors


# The exercise's own numbers, which any message may say (layer names, kernel sizes, dim=1, base * 2, ...)
EXERCISE_NUMBERS = re.compile(r"(Conv2d|ConvTranspose2d|BatchNorm2d|MaxPool2d|AvgPool2d|down[123]|up[123]|x[1234]|"
                              r"dim=1|[123]x[123]|kernel size 2|stride [12]|padding 1|// 2|\(2\)|base \* [248])")


@pytest.mark.slow
def test_hidden_cases_messages_show_no_sizes(graded):
    """A hidden case's message names the case by its description, never by a number of its sizes."""
    seen = 0
    for result in graded.values():
        for test in result.tests:
            if "hidden" not in test.name or test.score == test.max_score:
                continue
            seen += 1
            label = re.search(r"hidden case \(([^)]*)\)", test.output)
            text = test.output.replace(label.group(0), "") if label else test.output
            assert label is not None, test.output
            assert not re.search(r"\d", EXERCISE_NUMBERS.sub("", text)), f"{test.name}: {test.output}"
    assert seen > 10


@pytest.mark.slow
def test_a_step_charged_for_its_double_conv_is_not_charged_twice(graded):
    """DoubleConv without its second ReLU: Down, Up and UNet pass, judged with their own DoubleConv."""
    result = graded["bug_double_conv_one_relu_score_double_conv_only"]
    failed = [t for t in result.tests if t.score < t.max_score]
    assert failed and all(t.item == "double_conv" for t in failed), _explain(result)
    assert all("ReLU" in t.output for t in failed), _explain(result)


@pytest.mark.slow
def test_up_messages_say_what_is_wrong_in_the_exercise_words(graded):
    skip = graded["bug_up_skip_second_score_up_only"]
    assert any("skip connection must come first" in t.output for t in skip.tests), _explain(skip)
    left = graded["bug_up_padding_on_the_left_score_centred_case_only"]
    assert any("odd pixel of padding goes on the right or the bottom" in t.output for t in left.tests), _explain(left)
    unpadded = graded["bug_up_no_padding_score_odd_up_cases_only"]
    assert any("pad the upsampled map with F.pad" in t.output for t in unpadded.tests), _explain(unpadded)
    for result in (skip, left, unpadded):
        assert not any("torch.cat([skip, x], dim=1)" in t.output and "F.pad(x, [" in t.output for t in result.tests)


def test_the_catalogue_notebooks_are_built_from_the_current_source():
    for name in catalogue.CASES:
        on_disk = nbformat.read(catalogue.path_of(name), as_version=4)
        assert nbformat.writes(on_disk) == nbformat.writes(catalogue.build(name)), (
            f"{name}.ipynb is stale: run python {HERE / 'submissions' / 'build.py'}")


# ---- the seeded contract and the reference, on the trusted side --------------------------------------------

CONFIGS = [("double_conv", [3, 5]), ("down", [4, 6]), ("up", [8, 4]), ("up", [6, 10]), ("unet", [1, 3, 16]),
           ("unet", [3, 4, 4])]


@pytest.mark.parametrize("kind,args", CONFIGS)
def test_seeded_parameters_have_the_reference_state_dict_names_and_shapes(kind, args):
    module = reference.CLASSES[kind](*args)
    want = {key: tuple(value.shape) for key, value in module.state_dict().items()}
    assert list(seeded.state_shapes(kind, args).items()) == list(want.items())
    params = seeded.make_params(kind, args, 7)
    assert set(params) == {k for k in want if not k.endswith("num_batches_tracked")}
    reference.reference_module(kind, args, params)  # loads without a missing or unexpected key


def test_a_seed_gives_the_same_values_every_time_and_another_seed_other_values():
    spec = {"kind": "unet", "args": [1, 3, 16], "inputs": {"x": [1, 1, 24, 20]}, "seed": 11}
    a, b = seeded.params_for(spec), seeded._params.__wrapped__("unet", (1, 3, 16), 11)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["outc.weight"], seeded.make_params("unet", [1, 3, 16], 12)["outc.weight"])
    assert torch.equal(seeded.inputs_for(spec)["x"], seeded.make_input([1, 1, 24, 20], 12))


def test_the_reference_is_the_contract_s_unet_with_the_seeded_values():
    spec = {"kind": "unet", "args": [2, 5, 8], "inputs": {"x": [1, 2, 40, 36], "x2": [1, 2, 40, 36]}, "seed": 3}
    model = ref.UNet(2, 5, 8)
    model.load_state_dict(seeded.params_for(spec), strict=False)
    with torch.no_grad():
        y = model.eval()(seeded.inputs_for(spec)["x"]).numpy()
    got = reference.expected(spec)
    assert got["y"].shape == (1, 5, 40, 36) and reference.close(got["y"], y, 0, 0)
    assert float(got["y"].std()) > 0.1 and not reference.close(got["y"], got["y2"])


def test_each_up_mistake_gives_other_values_where_its_case_can_tell():
    spec = {"kind": "up", "args": [8, 4], "inputs": {"x": [1, 8, 4, 3], "skip": [1, 4, 10, 9]}, "seed": 5}
    got = reference.expected(spec)
    variants = [k for k in got if k.startswith("variant: ")]
    assert len(variants) >= 3
    assert not any(reference.close(got[k], got["y"]) for k in variants)


def test_the_sandbox_side_files_import_only_torch_the_standard_library_and_their_own_package():
    for name, allowed in (("seeded.py", {"torch", "math", "functools", "__future__"}), ("probes.py", {"torch"})):
        tree = ast.parse((FOLDER / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert {a.name.split(".")[0] for a in node.names} <= allowed, (name, ast.dump(node))
            elif isinstance(node, ast.ImportFrom):
                assert node.level > 0 or node.module.split(".")[0] in allowed, (name, ast.dump(node))
                assert name != "seeded.py" or node.level == 0, "seeded.py is imported on both sides: no relative imports"


def test_the_points_of_each_grader_add_up_to_its_test_cell():
    plugin = plugins.get("notebook11")
    want = {"test_double_conv": 2, "test_down_up_shapes": 3, "test_unet_output": 3, "test_device_placement": 2}
    for module in plugin.grader_modules():
        total = 0.0
        for name, fn in vars(module).items():
            if name.startswith("test_") and hasattr(fn, "points"):
                marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
                count = 1
                for mark in marks:
                    count *= len(mark.args[1])
                total += fn.points * count
        assert total == pytest.approx(want[module.CELL]), module.__name__

"""Notebook 11's content: the data generator, the reference U-Net, the diagram, the nbgrader
metadata and blanks, and a real run of the instructor's notebook.

Run: .venv/bin/python -m pytest -q assignments/notebook11/tests   (about half a minute)
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
FOLDER = HERE.parent  # assignments/notebook11
REPO = FOLDER.parents[1]
SOURCE_DIR = REPO / "source" / "notebook11"
NOTEBOOK = SOURCE_DIR / "notebook11.ipynb"

EXPECTED_TEST_CELLS = {"test_double_conv": 2, "test_down_up_shapes": 3, "test_unet_output": 3,
                       "test_device_placement": 2}
ANSWER_CELLS = ["setup", "double_conv", "down", "up", "unet", "unet_demo", "train_unet"]


def load_module(name: str):
    spec = importlib.util.spec_from_file_location(f"notebook11_{name}", FOLDER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def shapes():
    return load_module("shapes")


@pytest.fixture
def reference():
    return load_module("unet_reference")


@pytest.fixture
def notebook():
    return nbformat.read(str(NOTEBOOK), as_version=4)


def grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def cell_by_id(notebook, wanted: str):
    found = [cell for cell in notebook.cells if grade_id(cell) == wanted]
    assert len(found) == 1, f"expected one cell with grade_id {wanted!r}, found {len(found)}"
    return found[0]


def notebook_generator(notebook) -> dict:
    """The notebook's own generator cell, run in a namespace with only NumPy imported."""
    cells = [cell for cell in notebook.cells
             if cell.cell_type == "code" and "def make_shapes_dataset" in cell.source]
    assert len(cells) == 1, "the notebook should define make_shapes_dataset in exactly one cell"
    namespace = {"np": np}
    exec(compile(cells[0].source, "notebook generator cell", "exec"), namespace)
    return namespace


def notebook_model_classes(notebook) -> dict:
    """DoubleConv, Down, Up and UNet exactly as the solution notebook defines them."""
    namespace = {"torch": torch, "nn": nn, "F": F}
    for wanted in ["double_conv", "down", "up", "unet"]:
        exec(compile(cell_by_id(notebook, wanted).source, wanted, "exec"), namespace)
    return namespace


# ---- data ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, size, seed", [
    pytest.param(96, 64, 11, id="the-training-set"),
    pytest.param(16, 64, 111, id="the-validation-set"),
    pytest.param(5, 37, 2024, id="an-odd-size-and-another-seed"),
])
def test_the_notebooks_generator_gives_the_same_arrays_as_shapes_py(notebook, shapes, n, size, seed):
    ours = shapes.make_shapes_dataset(n, size=size, seed=seed)
    theirs = notebook_generator(notebook)["make_shapes_dataset"](n, size=size, seed=seed)
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b)


def test_the_notebook_names_the_same_classes_as_shapes_py(notebook, shapes):
    assert tuple(notebook_generator(notebook)["CLASS_NAMES"]) == shapes.CLASS_NAMES


def test_the_notebook_makes_its_sets_with_the_documented_seeds(notebook, shapes):
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert f"train_images, train_masks = make_shapes_dataset(96, seed={shapes.TRAIN_SEED})" in code
    assert f"val_images, val_masks = make_shapes_dataset(16, seed={shapes.VAL_SEED})" in code


def test_shapes_py_gives_the_same_arrays_for_a_seed_and_other_arrays_for_another(shapes):
    first = shapes.make_shapes_dataset(8, seed=5)
    again = shapes.make_shapes_dataset(8, seed=5)
    other = shapes.make_shapes_dataset(8, seed=6)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_the_arrays_have_the_documented_shapes_types_and_classes(shapes):
    images, masks = shapes.make_shapes_dataset(96, seed=shapes.TRAIN_SEED)
    assert images.shape == (96, 1, 64, 64) and images.dtype == np.float32
    assert masks.shape == (96, 64, 64) and masks.dtype == np.int64
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert set(np.unique(masks).tolist()) == {0, 1, 2}
    assert shapes.CLASS_NAMES == ("background", "circle", "rectangle")
    assert all((mask > 0).any() for mask in masks), "every image should hold at least one shape"
    fractions = np.bincount(masks.ravel(), minlength=3) / masks.size
    assert 0.8 < fractions[0] < 0.9 and fractions[1] > 0.03 and fractions[2] > 0.03


def test_the_masks_line_up_with_the_bright_shapes_in_the_images(shapes):
    images, masks = shapes.make_shapes_dataset(32, seed=3)
    grey = images[:, 0]
    assert grey[masks > 0].mean() > grey[masks == 0].mean() + 0.3


def test_class_one_is_round_and_class_two_fills_its_bounding_box(shapes):
    """A shape standing alone fills about pi/4 of its bounding box when its class is 1 (circle) and
    all of it when its class is 2 (rectangle). Shapes that touch a shape of the other class are left out."""
    ndimage = pytest.importorskip("scipy.ndimage")
    _, masks = shapes.make_shapes_dataset(64, seed=7)
    fills = {1: [], 2: []}
    for mask in masks:
        parts, count = ndimage.label(mask > 0)
        for part, box in enumerate(ndimage.find_objects(parts), start=1):
            inside = parts[box] == part
            labels = np.unique(mask[box][inside])
            if len(labels) != 1 or np.any((parts[box] != part) & (parts[box] != 0)):
                continue  # two shapes touching, or another shape inside the box
            fills[int(labels[0])].append(inside.mean())
    assert len(fills[1]) > 10 and len(fills[2]) > 10
    assert 0.7 < np.median(fills[1]) < 0.85
    assert np.median(fills[2]) == 1.0  # two rectangles overlapping make one part that fills less


# ---- the reference U-Net ----------------------------------------------------------------------

@pytest.mark.parametrize("height, width", [
    pytest.param(64, 64, id="even-64x64"),
    pytest.param(63, 61, id="odd-63x61"),
    pytest.param(17, 9, id="small-odd-17x9"),
])
def test_the_reference_unet_gives_class_scores_for_every_pixel(reference, height, width):
    torch.manual_seed(0)
    model = reference.UNet(in_channels=1, num_classes=3, base=16).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, height, width))
    assert tuple(out.shape) == (2, 3, height, width)


def test_the_reference_up_concatenates_the_skip_first_on_the_channel_axis(reference):
    torch.manual_seed(0)
    up = reference.Up(8, 4)
    x, skip = torch.rand(1, 8, 4, 3), torch.rand(1, 4, 10, 9)
    seen = []
    up.conv.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    with torch.no_grad():
        out = up(x, skip)
        upsampled = up.up(x)
    joined = seen[0]
    assert tuple(out.shape) == (1, 4, 10, 9)
    assert tuple(joined.shape) == (1, 8, 10, 9)
    assert torch.equal(joined[:, :4], skip)
    # the upsampled 8x6 map sits 1 row and 1 column in: half of each difference (2, 3), rounded down
    middle = torch.zeros(1, 4, 10, 9, dtype=torch.bool)
    middle[:, :, 1:9, 1:7] = True
    assert torch.equal(joined[:, 4:, 1:9, 1:7], upsampled)
    assert bool((joined[:, 4:][~middle] == 0).all()), "the padding should be zeros"


def test_the_solution_notebooks_model_loads_into_the_reference_and_gives_the_same_logits(notebook, reference):
    classes = notebook_model_classes(notebook)
    torch.manual_seed(0)
    theirs = classes["UNet"](in_channels=1, num_classes=3, base=16).eval()
    ours = reference.UNet(in_channels=1, num_classes=3, base=16).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.rand(2, 1, 63, 61)
    with torch.no_grad():
        assert torch.allclose(theirs(x), ours(x), atol=1e-6)


# ---- nbgrader metadata and blanks -------------------------------------------------------------

def test_the_test_cells_are_locked_with_the_agreed_ids_and_points(notebook):
    tests = {grade_id(c): c.metadata["nbgrader"] for c in notebook.cells
             if c.metadata.get("nbgrader", {}).get("grade")}
    assert {k: v["points"] for k, v in tests.items()} == EXPECTED_TEST_CELLS
    for meta in tests.values():
        assert meta["locked"] is True and meta["solution"] is False and meta["schema_version"] == 3


def test_every_answer_cell_is_an_unlocked_solution_cell_and_grade_ids_are_unique(notebook):
    ids = [grade_id(c) for c in notebook.cells if grade_id(c)]
    assert len(ids) == len(set(ids))
    for wanted in ANSWER_CELLS:
        meta = cell_by_id(notebook, wanted).metadata["nbgrader"]
        assert meta == {"grade": False, "grade_id": wanted, "locked": False, "schema_version": 3, "solution": True}


def test_every_blank_marker_matches_its_line_and_only_answer_cells_have_blanks(notebook):
    from autograder.blanks import blank_source

    blanked = {}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        student, blanks = blank_source(cell.source)
        if blanks:
            assert cell.metadata["nbgrader"]["solution"] is True
            assert "STUDENT SEES" not in student
            blanked[grade_id(cell)] = len(blanks)
    assert set(blanked) == set(ANSWER_CELLS)


def test_the_self_checks_call_the_grader_s_words_from_the_helper_cell(notebook):
    """The first code cell imports the self-check helpers (the release holds their code); each
    self-check cell calls one of their entry points and asserts on its message."""
    from assignments.notebook11.selfcheck import ENTRY_POINTS

    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code[0].source.rstrip().endswith("from assignments.notebook11.selfcheck import *")
    assert not any("import *" in c.source or "autograder" in c.source for c in code[1:])
    checks = [c.source for c in code if c.metadata.get("nbgrader", {}).get("grade")]
    assert [next(e for e in ENTRY_POINTS if f"{e}(globals()" in s) for s in checks] == list(ENTRY_POINTS)
    assert all("assert _problem is None, _problem" in s for s in checks)


def test_the_notebook_downloads_and_installs_nothing(notebook):
    text = "\n".join(c.source for c in notebook.cells)
    assert "!pip" not in text and "%pip" not in text and "download=True" not in text
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert "://" not in link and (SOURCE_DIR / link).is_file(), link


def test_figures_py_draws_the_diagram_as_a_png(tmp_path):
    figures = load_module("figures")
    out = figures.draw(tmp_path / "unet_diagram.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 10_000 < out.stat().st_size < 300_000


# ---- the whole notebook, really executed -------------------------------------------------------

@pytest.mark.slow
def test_the_solution_notebook_runs_end_to_end_and_its_loss_goes_down(notebook, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel inherits it: one core, as budgeted
    notebook.cells.append(nbformat.v4.new_code_cell(
        'import json\nprint("LOSSES=" + json.dumps({"type": type(losses).__name__, '
        '"kinds": sorted({type(v).__name__ for v in losses}), "values": [float(v) for v in losses]}))'))
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(SOURCE_DIR)}}).execute()

    stderr = [(grade_id(c), o.text) for c in notebook.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "stream" and o.name == "stderr"]
    assert stderr == [], "nbgrader scores a test cell 0 when it writes to stderr"
    for wanted in EXPECTED_TEST_CELLS:
        printed = "".join(o.get("text", "") for o in cell_by_id(notebook, wanted).outputs)
        assert "all visible checks pass" in printed, wanted

    last = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    report = json.loads(last.split("LOSSES=", 1)[1])
    assert report["type"] == "list" and report["kinds"] == ["float"], "losses: a list of plain floats"
    losses = report["values"]
    assert len(losses) == 60
    assert losses[-1] < 0.7 * losses[0]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])

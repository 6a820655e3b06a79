"""Notebook 11's catalogue of example submissions: the instructor's solution and edits of it, each
named by what it is and written here as NAME.ipynb. The expected item scores are in CASES (the test
grades every notebook and compares).

Run: .venv/bin/python assignments/notebook11/tests/submissions/build.py   (rewrites the notebooks)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[3] / "source" / "notebook11" / "notebook11.ipynb"
FULL = {"double_conv": 2.0, "down_up": 3.0, "unet_output": 3.0, "device_placement": 2.0}
MARKER = re.compile(r"[ \t]*# STUDENT SEES:.*$", re.MULTILINE)


def scores(**lost: float) -> dict[str, float]:
    """Item scores: full, less what each named item loses."""
    return {item: round(points - lost.get(item, 0.0), 4) for item, points in FULL.items()}


# name -> (what it shows, expected item scores, edits: (grade_id of the answer cell, old text, new text))
CASES: dict[str, tuple[str, dict[str, float], list[tuple[str, str, str]]]] = {
    "correct_solution_score_full": ("the instructor's solution", scores(), []),
    "bug_up_skip_second_score_up_only": (
        "torch.cat([x, skip], dim=1): runs, wrong values in every Up case; the UNet is judged apart from it",
        scores(down_up=2.0),
        [("up", "torch.cat([skip, x], dim=1)", "torch.cat([x, skip], dim=1)")]),
    "bug_up_cat_on_dim0_score_up_only": (
        "torch.cat on dim 0: every Up call raises, and so does the demo's model(images)",
        scores(down_up=2.0),
        [("up", "torch.cat([skip, x], dim=1)", "torch.cat([skip, x], dim=0)")]),
    "bug_up_no_padding_score_odd_up_cases_only": (
        "no F.pad: only skips larger than the upsampled map fail (the UNet on 63x61 stops in Up, Up's item)",
        scores(down_up=1.5),
        [("up", "        x = F.pad(x, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])\n", "")]),
    "bug_up_padding_on_the_left_score_centred_case_only": (
        "the odd pixel of padding on the left and top: only skips 2+ pixels larger, or 1 larger, tell",
        scores(down_up=1.5),
        [("up", "[diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2]",
          "[diff_x - diff_x // 2, diff_x // 2, diff_y - diff_y // 2, diff_y // 2]")]),
    "bug_down_average_pooling_score_down_only": (
        "Down with nn.AvgPool2d(2) instead of the max-pool: right shapes, wrong values",
        scores(down_up=1.0),
        [("down", "nn.MaxPool2d(2),", "nn.AvgPool2d(2),")]),
    "bug_down_without_pooling_score_down_only": (
        "Down without its max-pool: the map keeps its size (the training cell then runs past its time limit)",
        scores(down_up=1.0),
        [("down", "            nn.MaxPool2d(2),\n", "")]),
    "bug_double_conv_one_relu_score_double_conv_only": (
        "DoubleConv without its second ReLU: Down, Up and UNet are judged with their own DoubleConv",
        scores(double_conv=2.0),
        [("double_conv", "            nn.BatchNorm2d(out_channels),\n            nn.ReLU(inplace=True),\n        )",
          "            nn.BatchNorm2d(out_channels),\n        )")]),
    "bug_outc_kernel_3_score_unet_values_lost": (
        "outc a 3x3 convolution (padding 1): the logits keep their shape, the values do not",
        scores(unet_output=2.5),
        [("unet", "nn.Conv2d(base, num_classes, kernel_size=1)", "nn.Conv2d(base, num_classes, kernel_size=3, padding=1)")]),
    "bug_unet_wrong_skip_score_zero_for_unet": (
        "up3 gets x2 as its skip: the model raises; its parts, run as a U-Net runs them, do not",
        scores(unet_output=3.0),
        [("unet", "x = self.up3(x, x1)", "x = self.up3(x, x2)")]),
    "bug_device_hard_coded_cpu_score_device_choice_lost": (
        'device = torch.device("cpu"): wrong in the run with a GPU',
        scores(device_placement=0.25),
        [("setup", 'torch.device("cuda" if torch.cuda.is_available() else "cpu")', 'torch.device("cpu")')]),
    "bug_model_not_moved_score_device_partial": (
        "the model left on the CPU: in the run with a GPU, the model is elsewhere and model(images) raises",
        scores(device_placement=0.5),
        [("unet_demo", "model = UNet(in_channels=1, num_classes=3, base=16).to(device)",
          "model = UNet(in_channels=1, num_classes=3, base=16)")]),
    "hostile_unet_returns_zeros_score_no_unet_values": (
        "UNet.forward returns zeros of the right shape, on the CPU",
        scores(unet_output=2.5, device_placement=0.25),
        [("unet", "        x1 = self.inc(x)\n",
          "        return torch.zeros(x.shape[0], self.outc.out_channels, x.shape[2], x.shape[3])\n"
          "        x1 = self.inc(x)\n")]),
    "hostile_double_conv_returns_zeros_score_no_values": (
        "DoubleConv.forward returns zeros of the right shape: no value check passes, nor does one built on it",
        scores(double_conv=2.0, down_up=3.0, unet_output=2.5, device_placement=0.25),
        [("double_conv", "        return self.double_conv(x)",
          "        return torch.zeros(x.shape[0], self.double_conv[0].out_channels, x.shape[2], x.shape[3])")]),
}


EXTRA = {  # graded with NB11_CATALOGUE=all: slower (a time-out) or more of what the others show
    "bug_down_without_pooling_score_down_only",
    "bug_model_not_moved_score_device_partial",
    "hostile_unet_returns_zeros_score_no_unet_values",
    "bug_up_cat_on_dim0_score_up_only",
    "bug_down_average_pooling_score_down_only",
}
FAST = [name for name in CASES if name not in EXTRA]  # graded by every run of the tests


def grade(names: list[str]) -> dict:
    """The named cases graded for real, in the sandbox (autograder.engine.grade): name -> Result."""
    from autograder import engine, sandbox

    notebooks = {name: nbformat.read(path_of(name), as_version=4) for name in names}
    return engine.grade(notebooks, assignment="notebook11", limits=sandbox.Limits(cell_seconds=30, submission_seconds=120),
                        workers=2, warm=True)  # forked from warm zygotes, two at a time, as a class is graded


def build(name: str) -> nbformat.NotebookNode:
    """The case's notebook: the source's cells, the blanks' markers removed, the self-check helpers
    copied in as the release has them (autograder/inlineselfchecks.py), the case's edits made."""
    from autograder.inlineselfchecks import inline

    nb = nbformat.read(SOURCE, as_version=4)
    edits = CASES[name][2]
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.source = inline(MARKER.sub("", cell.source))
        cell.outputs, cell.execution_count = [], None
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        for target, old, new in edits:
            if target == gid:
                if cell.source.count(old) != 1:
                    raise ValueError(f"{name}: {old!r} is not once in cell {gid!r}")
                cell.source = cell.source.replace(old, new)
    return nb


def path_of(name: str) -> Path:
    return HERE / f"{name}.ipynb"


def main() -> int:
    for name in CASES:
        nbformat.write(build(name), path_of(name))
    for stale in set(HERE.glob("*.ipynb")) - {path_of(n) for n in CASES}:
        stale.unlink()
    print(f"wrote {len(CASES)} notebooks to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

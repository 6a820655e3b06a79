"""Draws the notebook's two diagrams (a residual block, U-Net) as local PNG files.

The seed notebook linked to images on external sites, which do not load offline. These are
drawn with matplotlib instead and saved next to the source notebook, so that nbgrader copies
them into the release:

    python -m assignments.notebook10.figures            # rewrite source/notebook10/*.png
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from autograder.course import COURSE

RESIDUAL_BLOCK = "residual_block.png"
UNET = "unet.png"
_PNG_META = {"Software": None}  # no version string, so the bytes only change with the drawing


def _box(ax: Any, x: float, y: float, w: float, h: float, text: str, color: str, fontsize: int = 10) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=color, edgecolor="#333333", linewidth=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax: Any, start: tuple[float, float], end: tuple[float, float], **kw: Any) -> None:
    style = dict(arrowstyle="-|>", color="#333333", linewidth=1.4, mutation_scale=14)
    style.update(kw)
    ax.annotate("", xy=end, xytext=start, arrowprops=style)


def residual_block(path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 6.4), dpi=110)
    ax.set_xlim(0, 5.2)
    ax.set_ylim(0, 7.2)
    ax.axis("off")
    x = 2.0
    steps = [(6.6, "input  x", "#ffffff"), (5.6, "3x3 conv, stride s", "#cfe2f3"), (4.8, "BatchNorm", "#d9ead3"),
             (4.0, "ReLU", "#fff2cc"), (3.2, "3x3 conv, stride 1", "#cfe2f3"), (2.4, "BatchNorm", "#d9ead3")]
    for (y0, _, _), (y1, _, _) in zip(steps, steps[1:]):
        _arrow(ax, (x, y0 - 0.25), (x, y1 + 0.25))
    for y, text, color in steps:
        _box(ax, x, y, 2.4, 0.5, text, color)
    _box(ax, x, 1.45, 0.6, 0.5, "+", "#f4cccc", fontsize=14)
    _arrow(ax, (x, 2.15), (x, 1.7))
    _box(ax, x, 0.6, 2.4, 0.5, "ReLU  ->  H(x) = F(x) + x", "#fff2cc")
    _arrow(ax, (x, 1.2), (x, 0.85))
    # the shortcut: around the main path, into the addition
    ax.plot([x + 1.2, 4.3, 4.3], [6.6, 6.6, 4.6], color="#cc0000", linewidth=1.6)
    _arrow(ax, (4.3, 2.95), (4.3, 1.45), color="#cc0000")
    ax.plot([4.3, x + 0.3], [1.45, 1.45], color="#cc0000", linewidth=1.6)
    ax.text(4.3, 3.8, "shortcut:\nidentity, or\n1x1 conv + BN\nwhen the shape\nchanges",
            ha="center", va="center", fontsize=8.5, color="#990000")
    ax.text(0.35, 4.0, "F(x)", ha="center", va="center", fontsize=12, rotation=90, color="#1c4587")
    ax.plot([0.6, 0.6], [2.2, 5.85], color="#1c4587", linewidth=1.0)
    ax.set_title("A basic residual block", fontsize=12)
    fig.savefig(path, metadata=_PNG_META)
    plt.close(fig)
    return path


def unet(path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.4, 5.0), dpi=110)
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 6.5)
    ax.axis("off")
    levels = [(5.2, "64", "H x W"), (4.0, "128", "H/2"), (2.8, "256", "H/4"), (1.6, "512", "H/8")]
    for i, (y, ch, size) in enumerate(levels):
        _box(ax, 1.6 + 0.5 * i, y, 1.5, 0.6, f"conv x2\n{ch} ch, {size}", "#cfe2f3", 8.5)
        _box(ax, 8.4 - 0.5 * i, y, 1.5, 0.6, f"conv x2\n{ch} ch, {size}", "#d9ead3", 8.5)
        _arrow(ax, (2.4 + 0.5 * i, y), (7.6 - 0.5 * i, y), color="#999999", linestyle="--")
        ax.text(5.0, y + 0.15, "copy + concatenate", ha="center", fontsize=7.5, color="#666666")
        if i < len(levels) - 1:
            _arrow(ax, (1.6 + 0.5 * i, y - 0.32), (1.6 + 0.5 * (i + 1), y - 0.88), color="#1c4587")
            _arrow(ax, (8.4 - 0.5 * (i + 1), y - 0.88), (8.4 - 0.5 * i, y - 0.32), color="#38761d")
    _box(ax, 5.0, 0.5, 1.9, 0.6, "bottleneck\n1024 ch, H/16", "#fff2cc", 8.5)
    _arrow(ax, (3.1, 1.28), (4.1, 0.6), color="#1c4587")
    _arrow(ax, (5.9, 0.6), (6.9, 1.28), color="#38761d")
    ax.text(0.9, 3.0, "contracting path\n(encoder)\nmax-pool / stride 2", ha="center", fontsize=8.5,
            color="#1c4587", rotation=90, va="center")
    ax.text(9.3, 3.0, "expansive path\n(decoder)\nup-convolution", ha="center", fontsize=8.5,
            color="#38761d", rotation=90, va="center")
    _box(ax, 1.6, 6.0, 1.5, 0.32, "input image", "#ffffff", 8)
    _arrow(ax, (1.6, 5.84), (1.6, 5.52))
    _box(ax, 8.3, 6.0, 2.5, 0.32, "1x1 conv -> per-pixel mask", "#f4cccc", 8)
    _arrow(ax, (8.4, 5.52), (8.4, 5.84))
    ax.set_title("U-Net: encoder, decoder and skip connections", fontsize=12)
    fig.savefig(path, metadata=_PNG_META)
    plt.close(fig)
    return path


def draw_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [residual_block(folder / RESIDUAL_BLOCK), unet(folder / UNET)]


def main(argv: list[str] | None = None) -> int:
    for path in draw_all(COURSE.source("notebook10")):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

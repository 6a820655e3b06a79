"""Draws Notebook 11's U-Net diagram (boxes and arrows, matplotlib only).

    python assignments/notebook11/figures.py            # writes source/notebook11/unet_diagram.png

The picture shows the notebook's own model: UNet(in_channels=1, num_classes=3, base=16) on a
64x64 image, three down steps and three up steps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "source" / "notebook11" / "unet_diagram.png"

BASE, SIZE, DEPTH = 16, 64, 3
DX, DY = 1.55, 1.45  # distance between columns, between levels
COLOURS = {"conv": "#1f77b4", "down": "#d62728", "up": "#2ca02c", "skip": "#7f7f7f", "out": "#9467bd"}


def _box(ax, x, y, channels, size, label=None, face="#dbe9f6", width=None):
    """A feature map: width grows with the channels, height with the spatial size."""
    width = width or 0.25 + 0.12 * channels.bit_length()
    height = 0.35 + 0.55 * size / SIZE
    ax.add_patch(Rectangle((x - width / 2, y - height / 2), width, height, facecolor=face,
                           edgecolor="black", linewidth=1.0, zorder=2))
    ax.text(x, y, label or f"{channels} ch\n{size}x{size}", ha="center", va="center", fontsize=8, zorder=3)
    return width, height


def _arrow(ax, start, end, colour, style="-|>", dashed=False):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=colour,
                                 linewidth=1.6, linestyle="--" if dashed else "-", zorder=1))


def draw(out: Path = DEFAULT_OUT) -> Path:
    fig, ax = plt.subplots(figsize=(10, 5.6))
    enc_x = [1 + DX * level for level in range(DEPTH + 1)]  # encoder columns, level 0 at the top
    dec_x = [1 + DX * (2 * DEPTH - level) for level in range(DEPTH + 1)]
    y = [-DY * level for level in range(DEPTH + 1)]

    # input image and the first DoubleConv
    _box(ax, -0.6, y[0], 1, SIZE, "image\n1 ch\n64x64", face="#eeeeee", width=0.75)
    _arrow(ax, (-0.2, y[0]), (enc_x[0] - 0.5, y[0]), COLOURS["conv"])
    ax.text((enc_x[0] - 0.6) / 2, y[0] + 0.15, "inc", ha="center", fontsize=8, color=COLOURS["conv"])

    sizes = [SIZE >> level for level in range(DEPTH + 1)]
    channels = [BASE << level for level in range(DEPTH + 1)]
    for level in range(DEPTH + 1):
        _box(ax, enc_x[level], y[level], channels[level], sizes[level])
        if level < DEPTH:
            # Down: max-pool then DoubleConv
            _arrow(ax, (enc_x[level] + 0.2, y[level] - 0.45), (enc_x[level + 1] - 0.3, y[level + 1] + 0.35),
                   COLOURS["down"])
            ax.text((enc_x[level] + enc_x[level + 1]) / 2 - 0.35, (y[level] + y[level + 1]) / 2 - 0.15,
                    f"down{level + 1}", fontsize=8, color=COLOURS["down"], ha="right")
            # the decoder map of the same size, its Up arrow, and the skip connection
            _box(ax, dec_x[level], y[level], channels[level], sizes[level])
            _arrow(ax, (dec_x[level + 1] + 0.3, y[level + 1] + 0.35), (dec_x[level] - 0.2, y[level] - 0.45),
                   COLOURS["up"])
            ax.text((dec_x[level] + dec_x[level + 1]) / 2 + 0.35, (y[level] + y[level + 1]) / 2 - 0.15,
                    f"up{DEPTH - level}", fontsize=8, color=COLOURS["up"], ha="left")
            _arrow(ax, (enc_x[level] + 0.55, y[level]), (dec_x[level] - 0.55, y[level]), COLOURS["skip"],
                   dashed=True)
            words = f"skip: copy {channels[level]} ch, concatenate on dim=1" if level == 0 else \
                f"skip ({channels[level]} ch)"
            ax.text((enc_x[level] + dec_x[level]) / 2, y[level] + 0.12, words, ha="center", fontsize=8,
                    color=COLOURS["skip"])
    ax.text(enc_x[DEPTH], y[DEPTH] - 0.75, "bottleneck", ha="center", fontsize=8)

    # 1x1 convolution to the class scores
    _arrow(ax, (dec_x[0] + 0.5, y[0]), (dec_x[0] + 1.35, y[0]), COLOURS["out"])
    ax.text(dec_x[0] + 0.92, y[0] + 0.15, "outc\n1x1 conv", ha="center", va="bottom", fontsize=8,
            color=COLOURS["out"])
    _box(ax, dec_x[0] + 1.95, y[0], 3, SIZE, "logits\n3 ch\n64x64", face="#eadcf3", width=0.75)

    legend = [("DoubleConv: (3x3 conv, BatchNorm, ReLU) x 2", "conv"),
              ("Down: MaxPool 2x2, then DoubleConv", "down"),
              ("Up: ConvTranspose 2x2 (stride 2), pad to the skip's size, concatenate, DoubleConv", "up"),
              ("skip connection: the encoder's map, copied across", "skip"),
              ("1x1 convolution: class scores for every pixel", "out")]
    for i, (text, key) in enumerate(legend):
        ly = y[DEPTH] - 1.0 - 0.32 * i
        ax.plot([-0.95, -0.55], [ly, ly], color=COLOURS[key], linewidth=2,
                linestyle="--" if key == "skip" else "-")
        ax.text(-0.45, ly, text, va="center", fontsize=8)

    ax.set_xlim(-1.1, dec_x[0] + 2.5)
    ax.set_ylim(y[DEPTH] - 1.0 - 0.32 * len(legend), y[0] + 0.8)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("The U-Net of this notebook: UNet(in_channels=1, num_classes=3, base=16)", fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the PNG")
    print(draw(parser.parse_args().out))


if __name__ == "__main__":
    main()

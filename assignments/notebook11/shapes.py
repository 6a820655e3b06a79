"""Synthetic segmentation data for Notebook 11: bright circles and rectangles on a noisy background.

Offline and deterministic: the same seed gives the same arrays on every machine (numpy's
``default_rng``). The notebook's data cell holds a copy of ``draw_sample`` and
``make_shapes_dataset`` so that it runs on Colab without this package;
tests/test_notebook11_content.py checks that both give identical arrays.

Format (see README.md):
    images: float32, shape (n, 1, size, size), values in [0, 1]
    masks:  int64,   shape (n, size, size), 0 = background, 1 = circle, 2 = rectangle
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("background", "circle", "rectangle")
TRAIN_SEED = 11  # the notebook's training set: make_shapes_dataset(96, seed=TRAIN_SEED)
VAL_SEED = 111  # its validation set: make_shapes_dataset(16, seed=VAL_SEED)


def draw_sample(rng, size=64):
    """One image (1, size, size) float32 in [0, 1] and its mask (size, size) int64."""
    yy, xx = np.mgrid[0:size, 0:size] / size  # pixel coordinates scaled to [0, 1)

    # A smooth background: a gentle brightness slope plus one slow wave.
    slope_y, slope_x = rng.uniform(-0.15, 0.15, size=2)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    image = 0.25 + slope_y * (yy - 0.5) + slope_x * (xx - 0.5) + 0.05 * np.sin(2.0 * np.pi * xx + phase)
    mask = np.zeros((size, size), dtype=np.int64)

    # Two to four shapes, each painted over the ones before it (the mask follows the paint).
    for _ in range(rng.integers(2, 5)):
        label = int(rng.integers(1, 3))  # 1 = circle, 2 = rectangle
        half_h, half_w = rng.uniform(0.07, 0.16, size=2)  # half height and half width
        if label == 1:
            half_w = half_h  # a circle: one radius
        cy = rng.uniform(half_h, 1.0 - half_h)  # the whole shape stays inside the image
        cx = rng.uniform(half_w, 1.0 - half_w)
        if label == 1:
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= half_h ** 2
        else:
            inside = (np.abs(yy - cy) <= half_h) & (np.abs(xx - cx) <= half_w)
        image = np.where(inside, rng.uniform(0.55, 0.9), image)
        mask[inside] = label

    image = image + rng.normal(0.0, 0.06, size=(size, size))  # scanner-like noise
    return np.clip(image, 0.0, 1.0).astype(np.float32)[None], mask


def make_shapes_dataset(n, size=64, seed=0):
    """n images (n, 1, size, size) float32 and masks (n, size, size) int64, from one seed."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, 1, size, size), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=np.int64)
    for i in range(n):
        images[i], masks[i] = draw_sample(rng, size)
    return images, masks

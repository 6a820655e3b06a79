"""Reference computations (trusted side): what a correct DoubleConv, Down, Up or UNet gives for a
check's seeded parameters and inputs, and what the common mistakes give (for the messages).

The modules are unet_reference.py's, loaded with seeded.py's values and run in eval mode (batch
norm with the seeded running statistics), as the sandbox runs the student's.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from assignments.notebook11 import unet_reference as ref
from assignments.notebook11.seeded import inputs_for, params_for
from assignments.notebook11.selfcheck import pad_to as _pad  # the padding mistakes, as the self-checks make them

CLASSES = {"double_conv": ref.DoubleConv, "down": ref.Down, "up": ref.Up, "unet": ref.UNet}


def reference_module(kind: str, args: list[int], params: dict[str, torch.Tensor]) -> torch.nn.Module:
    module = CLASSES[kind](*args)
    missing, unexpected = module.load_state_dict(params, strict=False)
    if unexpected or any(not key.endswith("num_batches_tracked") for key in missing):
        raise ValueError(f"seeded.py and unet_reference.py disagree: {missing} {unexpected}")
    return module.eval()


# The ways an Up step is commonly got wrong that still run: what each gives, for the messages.
UP_VARIANTS = ("skip second", "extra on the left and top", "height and width swapped", "all on the right and bottom")


def _up_variant(module: ref.Up, x: torch.Tensor, skip: torch.Tensor, variant: str) -> torch.Tensor:
    u = module.up(x)
    if variant == "skip second":
        return module.conv(torch.cat([_pad(u, skip, "right"), skip], dim=1))
    return module.conv(torch.cat([skip, _pad(u, skip, variant)], dim=1))


# Down: the pooling missing, after the DoubleConv instead of before, or an average instead of a max.
DOWN_VARIANTS = ("pool after the DoubleConv", "average pooling")


def _down_variant(module: ref.Down, x: torch.Tensor, variant: str) -> torch.Tensor:
    pool, double = module.pool_conv[0], module.pool_conv[1]
    if variant == "pool after the DoubleConv":
        return pool(double(x))
    return double(F.avg_pool2d(x, 2))


def _key(spec: dict) -> tuple:
    return (spec["kind"], tuple(spec["args"]), tuple((k, tuple(v)) for k, v in spec["inputs"].items()),
            int(spec["seed"]))


def expected(spec: dict) -> dict[str, np.ndarray]:
    """The outputs a correct module gives for a value check's spec ("y", and "y2" where the spec
    has a second input), and for an Up or a Down, what its common mistakes give ("variant: ...")."""
    return _expected(_key(spec))


@lru_cache(maxsize=256)  # a class shares the seed: each value is computed once per run
def _expected(key: tuple) -> dict[str, np.ndarray]:
    kind, args, inputs, seed = key
    spec = {"kind": kind, "args": list(args), "inputs": {k: list(v) for k, v in inputs}, "seed": seed}
    module = reference_module(kind, list(args), params_for(spec))
    xs = inputs_for(spec)
    out: dict[str, np.ndarray] = {}
    with torch.no_grad():
        if kind == "up":
            out["y"] = module(xs["x"], xs["skip"]).numpy()
            if "x2" in xs:
                out["y2"] = module(xs["x2"], xs["skip2"]).numpy()
            for variant in UP_VARIANTS:
                try:
                    out[f"variant: {variant}"] = _up_variant(module, xs["x"], xs["skip"], variant).numpy()
                except RuntimeError:
                    pass
        else:
            out["y"] = module(xs["x"]).numpy()
            if "x2" in xs:
                out["y2"] = module(xs["x2"]).numpy()
            if kind == "down":
                for variant in DOWN_VARIANTS:
                    out[f"variant: {variant}"] = _down_variant(module, xs["x"], variant).numpy()
    return out


def close(a: object, b: np.ndarray, rtol: float = 1e-4, atol: float = 1e-4) -> bool:
    return isinstance(a, np.ndarray) and a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def variant_of(found: object, spec: dict) -> str | None:
    """Which common mistake the found output is (None: none of them)."""
    if not isinstance(found, np.ndarray):
        return None
    for key, value in expected(spec).items():
        if key.startswith("variant: ") and close(found, value):
            return key[len("variant: "):]
    return None

"""Values both sides derive from a seed for Notebook 11: the parameters and inputs the checks load
into a student's DoubleConv, Down, Up and UNet (sandbox side, before any notebook code runs) and
the reference code runs on (trusted side). The same seed always gives the same tensors.

Runs in two places: inside the sandbox as ``nb10_sandbox.plugins.notebook11.seeded`` (where
nothing else of this repository exists) and on the trusted side as
``assignments.notebook11.seeded``. So it imports only torch and the standard library, and nothing
relatively.

The parameters' names are the state_dict keys of the exercise's layout (``unet_reference.py``;
a test checks that both agree): ``double_conv.0.weight`` ... for a DoubleConv, ``pool_conv.1.``
+ a DoubleConv's for a Down, ``up.weight``/``up.bias`` and ``conv.`` + a DoubleConv's for an Up,
``inc.``, ``down1.``..``down3.``, ``up1.``..``up3.``, ``outc.`` for a UNet.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

# A layer's role in the layout: how its tensors are drawn, and which kind of module holds them.
CONV, CONV_T, BN = "Conv2d", "ConvTranspose2d", "BatchNorm2d"
BN_TENSORS = ("weight", "bias", "running_mean", "running_var")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) % (2**63))


def make_input(shape: list[int], seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=_generator(seed))


# ---- layouts: (module path, role, {tensor name: shape}) in state_dict order --------------------------

def double_conv_layers(cin: int, cout: int, prefix: str = "") -> list[tuple[str, str, dict]]:
    bn = {name: (cout,) for name in BN_TENSORS}
    return [(f"{prefix}double_conv.0", CONV, {"weight": (cout, cin, 3, 3)}),
            (f"{prefix}double_conv.1", BN, dict(bn)),
            (f"{prefix}double_conv.3", CONV, {"weight": (cout, cout, 3, 3)}),
            (f"{prefix}double_conv.4", BN, dict(bn))]


def down_layers(cin: int, cout: int, prefix: str = "") -> list[tuple[str, str, dict]]:
    return double_conv_layers(cin, cout, f"{prefix}pool_conv.1.")


def up_layers(cin: int, cout: int, prefix: str = "") -> list[tuple[str, str, dict]]:
    return [(f"{prefix}up", CONV_T, {"weight": (cin, cin // 2, 2, 2), "bias": (cin // 2,)})] + \
        double_conv_layers(cin, cout, f"{prefix}conv.")


def unet_layers(in_channels: int = 1, num_classes: int = 3, base: int = 16) -> list[tuple[str, str, dict]]:
    b = base
    return (double_conv_layers(in_channels, b, "inc.") + down_layers(b, 2 * b, "down1.")
            + down_layers(2 * b, 4 * b, "down2.") + down_layers(4 * b, 8 * b, "down3.")
            + up_layers(8 * b, 4 * b, "up1.") + up_layers(4 * b, 2 * b, "up2.") + up_layers(2 * b, b, "up3.")
            + [("outc", CONV, {"weight": (num_classes, b, 1, 1), "bias": (num_classes,)})])


LAYOUTS = {"double_conv": double_conv_layers, "down": down_layers, "up": up_layers, "unet": unet_layers}


def layers(kind: str, args: list[int]) -> list[tuple[str, str, dict]]:
    return LAYOUTS[kind](*args)


def state_shapes(kind: str, args: list[int]) -> dict[str, tuple[int, ...]]:
    """The state_dict's keys and shapes of a correct module (num_batches_tracked included)."""
    out: dict[str, tuple[int, ...]] = {}
    for path, role, tensors in layers(kind, args):
        for name, shape in tensors.items():
            out[f"{path}.{name}"] = tuple(shape)
        if role == BN:
            out[f"{path}.num_batches_tracked"] = ()
    return out


# ---- seeded values ------------------------------------------------------------------------------------

def _draw(gen: torch.Generator, role: str, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    if role == BN:
        if name == "weight":
            return 0.5 + torch.rand(*shape, generator=gen)
        if name == "running_var":
            return 0.5 + torch.rand(*shape, generator=gen)
        return 0.2 * torch.randn(*shape, generator=gen)  # bias, running_mean
    if name == "bias":
        return 0.1 * torch.randn(*shape, generator=gen)
    # He-style scale, so that values stay of order one through the whole U-Net
    fan_in = shape[0] if role == CONV_T else shape[1] * shape[2] * shape[3]
    return torch.randn(*shape, generator=gen) * math.sqrt(2.0 / fan_in)


@lru_cache(maxsize=32)  # the same for every submission of a run: a warm zygote makes them once
def _params(kind: str, args: tuple[int, ...], seed: int) -> dict[str, torch.Tensor]:
    gen = _generator(seed)
    params = {}
    for path, role, tensors in layers(kind, list(args)):
        for name, shape in tensors.items():
            params[f"{path}.{name}"] = _draw(gen, role, name, shape)
    return params


def make_params(kind: str, args: list[int], seed: int) -> dict[str, torch.Tensor]:
    """Parameters and batch-norm statistics of a correct `kind` module built with `args`, by
    state_dict key (no num_batches_tracked). Callers copy out of them, never into them."""
    return _params(kind, tuple(int(a) for a in args), int(seed))


def make_double_conv_params(cin: int, cout: int, seed: int) -> dict[str, torch.Tensor]:
    return make_params("double_conv", [cin, cout], seed)


def make_down_params(cin: int, cout: int, seed: int) -> dict[str, torch.Tensor]:
    return make_params("down", [cin, cout], seed)


def make_up_params(cin: int, cout: int, seed: int) -> dict[str, torch.Tensor]:
    return make_params("up", [cin, cout], seed)


def make_unet_params(in_channels: int, num_classes: int, base: int, seed: int) -> dict[str, torch.Tensor]:
    return make_params("unet", [in_channels, num_classes, base], seed)


# ---- what each check feeds the module -----------------------------------------------------------------

def inputs_for(spec: dict) -> dict[str, torch.Tensor]:
    """The seeded inputs of a check (a spec's "inputs": name -> shape), each from its own seed."""
    return {name: make_input(list(shape), int(spec["seed"]) + 1 + i)
            for i, (name, shape) in enumerate(spec["inputs"].items())}


def params_for(spec: dict) -> dict[str, torch.Tensor]:
    return make_params(spec["kind"], spec["args"], spec["seed"])

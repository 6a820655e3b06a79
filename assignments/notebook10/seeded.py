"""Values both sides derive from a seed: the parameters and inputs the checks load into a
student's objects (sandbox side, before any notebook code runs) and the reference code runs on
(trusted side). The same seed always gives the same tensors.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) % (2**63))


def make_input(shape: list[int], seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=_generator(seed))


def _conv_weight(gen: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    fan_in = shape[1] * shape[2] * shape[3]
    return torch.randn(*shape, generator=gen) * math.sqrt(2.0 / fan_in)


def _bn(gen: torch.Generator, prefix: str, n: int) -> dict[str, torch.Tensor]:
    return {f"{prefix}.weight": 0.5 + torch.rand(n, generator=gen),
            f"{prefix}.bias": 0.2 * torch.randn(n, generator=gen),
            f"{prefix}.running_mean": 0.2 * torch.randn(n, generator=gen),
            f"{prefix}.running_var": 0.5 + torch.rand(n, generator=gen)}


def needs_projection(cin: int, cout: int, stride: int) -> bool:
    return stride != 1 or cin != cout


def block_output_shape(cin: int, cout: int, stride: int, input_shape: list[int]) -> list[int]:
    b, _, h, w = input_shape
    return [b, cout, (h - 1) // stride + 1, (w - 1) // stride + 1]


def make_block_params(cin: int, cout: int, stride: int, seed: int, silence: str | None = None) -> dict[str, torch.Tensor]:
    """Parameters of a correct block for (cin, cout, stride); `silence` zeroes a path's last BN."""
    gen = _generator(seed)
    params = {"conv1.weight": _conv_weight(gen, (cout, cin, 3, 3)), **_bn(gen, "bn1", cout),
              "conv2.weight": _conv_weight(gen, (cout, cout, 3, 3)), **_bn(gen, "bn2", cout)}
    if needs_projection(cin, cout, stride):
        params["shortcut.conv.weight"] = _conv_weight(gen, (cout, cin, 1, 1))
        params.update(_bn(gen, "shortcut.bn", cout))
    target = {"main": "bn2", "shortcut": "shortcut.bn"}.get(silence or "")
    if target and f"{target}.weight" in params:
        params[f"{target}.weight"].zero_()
        params[f"{target}.bias"].zero_()
    return params


RESNET18_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (channels, stride of the first block) per stage


def resnet18_blocks() -> list[tuple[str, int, int, int]]:
    """ResNet18's basic blocks in order, as (state-dict prefix, in channels, out channels, stride)."""
    blocks, cin = [], 64
    for layer, (cout, stride) in enumerate(RESNET18_STAGES, start=1):
        for block in range(2):
            blocks.append((f"layer{layer}.{block}", cin, cout, stride if block == 0 else 1))
            cin = cout
    return blocks


def resnet18_shapes() -> dict[str, tuple[int, ...]]:
    """State-dict shapes of torchvision's ResNet18 adapted to 1 channel and 2 classes, in its
    order (a test checks this against torchvision; the trusted side does not import it)."""
    def bn(prefix: str, n: int) -> dict[str, tuple[int, ...]]:
        return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
                f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}

    shapes = {"conv1.weight": (64, 1, 7, 7), **bn("bn1", 64)}
    for prefix, cin, cout, stride in resnet18_blocks():
        shapes.update({f"{prefix}.conv1.weight": (cout, cin, 3, 3), **bn(f"{prefix}.bn1", cout),
                       f"{prefix}.conv2.weight": (cout, cout, 3, 3), **bn(f"{prefix}.bn2", cout)})
        if needs_projection(cin, cout, stride):
            shapes.update({f"{prefix}.downsample.0.weight": (cout, cin, 1, 1), **bn(f"{prefix}.downsample.1", cout)})
    shapes.update({"fc.weight": (2, 512), "fc.bias": (2,)})
    return shapes


@lru_cache(maxsize=4)  # the same for every submission of a run: a warm zygote makes it once
def make_resnet_params(seed: int) -> dict[str, torch.Tensor]:
    gen = _generator(seed)
    params = {}
    for name, shape in resnet18_shapes().items():
        if name.endswith("num_batches_tracked"):
            params[name] = torch.tensor(0)
        elif name.endswith("running_var") or (name.endswith(".weight") and len(shape) == 1):
            params[name] = 0.5 + torch.rand(*shape, generator=gen)
        elif len(shape) == 4:
            params[name] = _conv_weight(gen, shape)
        elif len(shape) == 2:
            params[name] = torch.randn(*shape, generator=gen) / math.sqrt(shape[1])
        else:
            params[name] = 0.2 * torch.randn(*shape, generator=gen)
    return params


def prepare(plan: dict) -> None:
    """Before the sandbox forks (runner.prepare): ResNet18's seeded parameters, the same for a whole class."""
    for cell in plan["cells"]:
        for spec in cell.get("probes", ()):
            if spec["op"] == "resnet":
                make_resnet_params(spec["seed"])

"""Reference computations (trusted side): what a correct submission produces for given values."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from assignments.notebook10.seeded import (block_output_shape, make_block_params, make_input, make_resnet_params, needs_projection,
                               resnet18_blocks)


def _bn(x: torch.Tensor, p: dict, prefix: str, train: bool) -> torch.Tensor:
    return F.batch_norm(x, p[f"{prefix}.running_mean"].clone(), p[f"{prefix}.running_var"].clone(),
                        p[f"{prefix}.weight"], p[f"{prefix}.bias"], training=train, momentum=0.1, eps=1e-5)


def block_outputs(cin: int, cout: int, stride: int, seed: int, input_shape: list[int], mode: str,
                  silence: str | None = None) -> dict[str, np.ndarray]:
    """Main path M, shortcut S and block output Y = relu(M + S) of a correct block."""
    return _block_outputs(cin, cout, stride, seed, tuple(input_shape), mode, silence)


@lru_cache(maxsize=512)  # a class shares the seed, so each value is computed once per run
def _block_outputs(cin: int, cout: int, stride: int, seed: int, input_shape: tuple[int, ...], mode: str,
                   silence: str | None) -> dict[str, np.ndarray]:
    p = make_block_params(cin, cout, stride, seed, silence)
    train = mode == "train"
    x = make_input(list(input_shape), seed + (1 if train else 2))
    with torch.no_grad():
        m = _bn(F.conv2d(F.relu(_bn(F.conv2d(x, p["conv1.weight"], stride=stride, padding=1), p, "bn1", train)),
                         p["conv2.weight"], stride=1, padding=1), p, "bn2", train)
        if needs_projection(cin, cout, stride):
            s = _bn(F.conv2d(x, p["shortcut.conv.weight"], stride=stride), p, "shortcut.bn", train)
        else:
            s = x
        y = F.relu(m + s)
    return {"M": m.numpy(), "S": s.numpy(), "Y": y.numpy(), "x": x.numpy()}


MAIN_PARAMS = ("conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias")


def _main_path(p: dict, x: torch.Tensor, stride: int, train: bool, variant: str = "right") -> torch.Tensor:
    """conv1 -> bn1 -> ReLU -> conv2 -> bn2, or one of the common ways to get it wrong (for messages)."""
    a = F.conv2d(x, p["conv1.weight"], stride=stride, padding=1)
    if variant == "relu before bn1":
        a = _bn(F.relu(a), p, "bn1", train)
    elif variant == "no first relu":
        a = _bn(a, p, "bn1", train)
    else:
        a = F.relu(_bn(a, p, "bn1", train))
    if variant == "bn2 skipped":
        return F.conv2d(a, p["conv2.weight"], stride=1, padding=1)
    if variant == "bn1 used twice":
        return _bn(F.conv2d(a, p["conv2.weight"], stride=1, padding=1), p, "bn1", train)
    if variant == "bn2 before conv2":
        return F.conv2d(_bn(a, p, "bn2", train), p["conv2.weight"], stride=1, padding=1)
    return _bn(F.conv2d(a, p["conv2.weight"], stride=1, padding=1), p, "bn2", train)


MAIN_PATH_VARIANTS = ("no first relu", "relu before bn1", "bn2 skipped", "bn1 used twice", "bn2 before conv2")


def main_path_variant(cin: int, cout: int, stride: int, seed: int, input_shape: list[int], mode: str,
                      variant: str) -> np.ndarray:
    p = make_block_params(cin, cout, stride, seed)
    x = make_input(list(input_shape), seed + (1 if mode == "train" else 2))
    with torch.no_grad():
        return _main_path(p, x, stride, mode == "train", variant).numpy()


def main_path_grads(cin: int, cout: int, stride: int, seed: int, input_shape: list[int], mode: str,
                    upstream: np.ndarray) -> dict[str, np.ndarray]:
    """The gradient of sum(M * upstream) with respect to the main path's parameters (M: the
    reference main path on the check's input). `upstream` is what reaches M from the block's
    output: the check's weights where the student's own output is past its final ReLU."""
    p = {k: v.clone().requires_grad_(k in MAIN_PARAMS) for k, v in make_block_params(cin, cout, stride, seed).items()}
    x = make_input(list(input_shape), seed + (1 if mode == "train" else 2))
    m = _main_path(p, x, stride, mode == "train")
    (m * torch.from_numpy(np.ascontiguousarray(upstream))).sum().backward()
    return {k: p[k].grad.numpy() for k in MAIN_PARAMS}


def shortcut_input_grad(cin: int, cout: int, stride: int, seed: int, input_shape: list[int], mode: str,
                        upstream: np.ndarray) -> np.ndarray:
    """The gradient of sum(S(x) * upstream) with respect to x, S the reference shortcut."""
    p = make_block_params(cin, cout, stride, seed)
    x = make_input(list(input_shape), seed + (1 if mode == "train" else 2)).requires_grad_(True)
    if needs_projection(cin, cout, stride):
        s = _bn(F.conv2d(x, p["shortcut.conv.weight"], stride=stride), p, "shortcut.bn", mode == "train")
    else:
        s = x
    (s * torch.from_numpy(np.ascontiguousarray(upstream))).sum().backward()
    return x.grad.numpy()


def warm_up_blocks(specs: list[dict]) -> None:
    """Fill the cache for the numeric block probes among `specs`, before any submission needs them."""
    for spec in specs:
        if spec["op"] == "block_numeric":
            for mode in spec["modes"]:
                block_outputs(*spec["args"], spec["seed"], spec["input"], mode, spec.get("silence"))


def resnet18_forward(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """ResNet18 (1 input channel, 2 classes) in eval mode with the parameters p, written out with
    torch.nn.functional: the reference does not use torchvision (whose import costs seconds)."""
    x = F.max_pool2d(F.relu(_bn(F.conv2d(x, p["conv1.weight"], stride=2, padding=3), p, "bn1", False)), 3, 2, 1)
    for prefix, cin, cout, stride in resnet18_blocks():
        out = F.relu(_bn(F.conv2d(x, p[f"{prefix}.conv1.weight"], stride=stride, padding=1), p, f"{prefix}.bn1", False))
        out = _bn(F.conv2d(out, p[f"{prefix}.conv2.weight"], padding=1), p, f"{prefix}.bn2", False)
        if needs_projection(cin, cout, stride):
            x = _bn(F.conv2d(x, p[f"{prefix}.downsample.0.weight"], stride=stride), p, f"{prefix}.downsample.1", False)
        x = F.relu(out + x)
    return F.linear(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1), p["fc.weight"], p["fc.bias"])


@lru_cache(maxsize=8)
def resnet_outputs(seed: int) -> dict[str, np.ndarray]:
    """The adapted ResNet18's conv1 on x, fc on features, and the whole model on x."""
    params = make_resnet_params(seed)
    x = make_input([4, 1, 28, 28], seed + 1)
    features = make_input([4, 512], seed + 2)
    with torch.no_grad():
        return {"conv1_out": F.conv2d(x, params["conv1.weight"], stride=2, padding=3).numpy(),
                "fc_out": F.linear(features, params["fc.weight"], params["fc.bias"]).numpy(),
                "rest_out": resnet18_forward(params, x).numpy()}


def close(a: np.ndarray | None, b: np.ndarray, rtol: float = 1e-4, atol: float = 1e-4) -> bool:
    return a is not None and a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))

"""Probes: run next to student code (in the sandbox) and report what the student's objects do.

A probe never judges. It builds the student's objects, loads parameters and inputs that both
sides derive from a seed (``make_block_params``, ``make_resnet_params``, ``make_input``; the
trusted side imports the same functions), runs them, and hands back arrays and plain facts.
The graders recompute the expected values with reference code and compare.
"""

from __future__ import annotations

import copy
import math
from functools import lru_cache
from typing import Any, Callable

import torch
from torch import nn

SAMPLE = 4096  # values kept of an output whose only purpose is a liveness check
NORM_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Dropout, nn.Dropout2d)
MAIN_PARTS = ("conv1", "bn1", "conv2", "bn2")

# Captured now, before any student code runs, so that patching the module attributes later
# does not change what the probes compute.
_relu = torch.nn.functional.relu
_no_grad = torch.no_grad
_allclose = torch.allclose
_tensor_type = torch.Tensor
_TB = getattr(torch._C, "TensorBase", None) or torch._C._TensorBase  # C type: its methods cannot be replaced
_detach, _to, _reshape, _contiguous, _numpy, _size = _TB.detach, _TB.to, _TB.reshape, _TB.contiguous, _TB.numpy, _TB.size
_device_of, _device_cls, _data_ptr = _TB.device.__get__, torch.device, _TB.data_ptr


# ---- values both sides derive from a seed -------------------------------------------------

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


# ---- describing the student's objects -------------------------------------------------------

def describe(module: Any) -> dict[str, Any]:
    if isinstance(module, nn.Conv2d):
        return {"type": "Conv2d", "in": module.in_channels, "out": module.out_channels,
                "kernel": list(module.kernel_size), "stride": list(module.stride),
                "padding": module.padding if isinstance(module.padding, str) else list(module.padding),
                "bias": module.bias is not None}
    if isinstance(module, nn.BatchNorm2d):
        return {"type": "BatchNorm2d", "features": module.num_features}
    if isinstance(module, nn.Linear):
        return {"type": "Linear", "in": module.in_features, "out": module.out_features, "bias": module.bias is not None}
    return {"type": type(module).__name__}


def block_parts(block: nn.Module) -> tuple[dict[str, Any], list[nn.Module]]:
    """The main-path modules by their scaffold names, and the other children (the shortcut)."""
    main = {name: getattr(block, name, None) for name in MAIN_PARTS}
    main_ids = {id(m) for m in main.values() if m is not None}
    rest = [m for m in block.children() if id(m) not in main_ids and not isinstance(m, NORM_ACTIVATIONS)]
    return main, rest


def _leaves(modules: list[nn.Module]) -> list[nn.Module]:
    return [m for top in modules for m in top.modules() if not list(m.children())]


def _apply_shortcut(rest: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for module in rest:
        x = module(x)
    return x


def _copy_into(target: Any, value: torch.Tensor, name: str, report: list[dict]) -> None:
    found = None if not isinstance(target, _tensor_type) else list(target.shape)
    if found != list(value.shape):
        report.append({"param": name, "expected": list(value.shape), "found": found})
        return
    target.data.copy_(value)


def _load_bn(module: Any, params: dict, prefix: str, report: list[dict]) -> None:
    for field in ("weight", "bias", "running_mean", "running_var"):
        _copy_into(getattr(module, field, None), params[f"{prefix}.{field}"], f"{prefix}.{field}", report)


def load_block(block: nn.Module, params: dict[str, torch.Tensor]) -> list[dict]:
    """Copy the seeded parameters into the student's block, by role; return the mismatches."""
    main, rest = block_parts(block)
    report: list[dict] = []
    with _no_grad():
        for conv in ("conv1", "conv2"):
            _copy_into(getattr(main[conv], "weight", None), params[f"{conv}.weight"], f"{conv}.weight", report)
        for bn in ("bn1", "bn2"):
            _load_bn(main[bn], params, bn, report)
        leaves = _leaves(rest)
        convs = [m for m in leaves if isinstance(m, nn.Conv2d)]
        norms = [m for m in leaves if isinstance(m, nn.BatchNorm2d)]
        if "shortcut.conv.weight" in params:
            _copy_into(convs[0].weight if convs else None, params["shortcut.conv.weight"], "shortcut.conv.weight", report)
            if norms:
                _load_bn(norms[0], params, "shortcut.bn", report)
            else:
                report.append({"param": "shortcut.bn", "expected": [params["shortcut.bn.weight"].shape[0]], "found": None})
    return report


# ---- the probes -----------------------------------------------------------------------------

class _Blobs:
    def __init__(self) -> None:
        self.items: list[bytes] = []

    def array(self, tensor: Any, limit: int | None = None) -> dict[str, Any]:
        t = _to(_detach(tensor), device="cpu", dtype=torch.float32)
        shape = list(_size(t))
        flat = _reshape(t, -1)
        if limit is not None:
            flat = flat[:limit]
        data = _numpy(_contiguous(flat)).tobytes()
        self.items.append(data)
        return {"blob": len(self.items) - 1, "shape": shape, "count": len(data) // 4}


def _shape(value: Any) -> list[int] | None:
    return list(_size(value)) if isinstance(value, _tensor_type) else None


def _construct(namespace: dict, spec: dict) -> nn.Module:
    cls = namespace.get(spec.get("cls", "ResidualBlock"))
    if cls is None:
        raise NameError(f"{spec.get('cls', 'ResidualBlock')} is not defined")
    return cls(*spec["args"])


def probe_block_shapes(namespace: dict, spec: dict, blobs: _Blobs) -> dict:
    block = _construct(namespace, spec)
    main, _ = block_parts(block)
    missing = [name for name, module in main.items() if not isinstance(module, nn.Module)]
    block.eval()
    x1, x2 = make_input(spec["input"], spec["seed"]), make_input(spec["input"], spec["seed"] + 1)
    with _no_grad():
        y1, y1b, y2 = block(x1), block(x1), block(x2)
    return {"shape": _shape(y1), "y1": blobs.array(y1, SAMPLE), "y1b": blobs.array(y1b, SAMPLE),
            "y2": blobs.array(y2, SAMPLE), "missing_layers": missing}


def probe_block_numeric(namespace: dict, spec: dict, blobs: _Blobs, describe_error: Callable) -> dict:
    cin, cout, stride = spec["args"]
    block = _construct(namespace, spec)
    main, rest = block_parts(block)
    result: dict[str, Any] = {
        "main": {k: (describe(m) if m is not None else None) for k, m in main.items()},
        "shortcut": [describe(m) for m in _leaves(rest)],
        "shortcut_params": sum(p.numel() for m in rest for p in m.parameters()),
        "modes": {},
    }
    for mode in spec["modes"]:
        params = make_block_params(cin, cout, stride, spec["seed"], spec.get("silence"))
        result["load"] = load_block(block, params)
        block.train(mode == "train")
        x = make_input(spec["input"], spec["seed"] + (1 if mode == "train" else 2))
        outs: dict[str, Any] = {}
        with _no_grad():
            for key, compute in (
                ("M", lambda: main["bn2"](main["conv2"](_relu(main["bn1"](main["conv1"](x)))))),
                ("S", lambda: _apply_shortcut(rest, x)),
                ("Y", lambda: block(x)),
            ):
                try:
                    outs[key] = blobs.array(compute())
                except Exception as exc:  # the student's error, reported, not raised
                    outs[key] = {"error": describe_error(exc)}
        result["modes"][mode] = outs
    return result


def _reference_copy(model: nn.Module, params: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of the student's model in which each parameter and buffer with a reference value
    of its shape *is* that value (not a copy of the student's tensor that is then overwritten:
    ResNet18 holds 45 MB). The others are copied as they are; loading reports them later."""
    memo: dict[int, Any] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        value = params.get(name)
        if isinstance(tensor, _tensor_type) and value is not None and list(_size(tensor)) == list(_size(value)):
            memo[id(tensor)] = nn.Parameter(value, requires_grad=tensor.requires_grad) \
                if isinstance(tensor, nn.Parameter) else value
    return copy.deepcopy(model, memo)


def _is_view_of(target: Any, value: torch.Tensor) -> bool:
    return (isinstance(target, _tensor_type) and _device_of(target).type == "cpu" and _data_ptr(target) == _data_ptr(value)
            and list(_size(target)) == list(_size(value)))


def probe_resnet(namespace: dict, spec: dict, blobs: _Blobs, describe_error: Callable) -> dict:
    name = spec["var"]
    if name not in namespace:
        raise NameError(f"{name} is not defined")
    model = namespace[name]
    result: dict[str, Any] = {
        "conv1": describe(getattr(model, "conv1", None)), "fc": describe(getattr(model, "fc", None)),
        "state": {k: list(v.shape) for k, v in model.state_dict().items()},
        "vars": {v: _shape(namespace.get(v)) for v in spec.get("shapes_of", [])},
    }
    params = make_resnet_params(spec["seed"])
    work = _reference_copy(model, params).to("cpu").eval()
    x = make_input([4, 1, 28, 28], spec["seed"] + 1)
    features = make_input([4, 512], spec["seed"] + 2)
    report: list[dict] = []
    with _no_grad():
        for key, compute in (("conv1", lambda: (
                _copy_into(getattr(work.conv1, "weight", None), params["conv1.weight"], "conv1.weight", report),
                work.conv1(x))[-1]),
            ("fc", lambda: (
                _copy_into(getattr(work.fc, "weight", None), params["fc.weight"], "fc.weight", report),
                _copy_into(getattr(work.fc, "bias", None), params["fc.bias"], "fc.bias", report),
                work.fc(features))[-1])):
            try:
                result[key + "_out"] = blobs.array(compute())
            except Exception as exc:
                result[key + "_out"] = {"error": describe_error(exc)}
        try:
            work.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
            work.fc = nn.Linear(512, 2)
            state = work.state_dict()
            for key, value in params.items():
                if not _is_view_of(state.get(key), value):
                    _copy_into(state.get(key), value, key, report)
            result["rest_out"] = blobs.array(work(x))
        except Exception as exc:
            result["rest_out"] = {"error": describe_error(exc)}
    result["load"] = report
    return result


def probe_shapes(namespace: dict, spec: dict, blobs: _Blobs) -> dict:
    """Shapes of the notebook's own output tensors, and whether each is what its block gives for
    its input: the block is run again on that input (in train mode, as the notebook ran it)."""
    out = {}
    for name, (block_name, input_name) in spec["vars"].items():
        value = namespace.get(name)
        if not isinstance(value, _tensor_type):
            out[name] = {"shape": None}
            continue
        out[name] = {"shape": _shape(value), "sample": blobs.array(value, SAMPLE), "reproduced": False}
        block, given = namespace.get(block_name), namespace.get(input_name)
        if isinstance(block, nn.Module):
            out[name]["missing_layers"] = [k for k, m in block_parts(block)[0].items() if not isinstance(m, nn.Module)]
        if isinstance(block, nn.Module) and isinstance(given, _tensor_type):
            try:
                with _no_grad():
                    again = block.train()(given)
                out[name]["reproduced"] = bool(_shape(again) == _shape(value) and
                                               _allclose(_to(again, device="cpu"), _to(value, device="cpu"),
                                                         rtol=1e-4, atol=1e-5))
            except Exception:
                pass
    return out


def _device_type(value: Any) -> str | None:
    try:
        return _device_cls(value).type
    except Exception:
        return None


def _tensor_device(value: Any) -> str | None:
    return _device_of(value).type if isinstance(value, _tensor_type) else None


def probe_device(namespace: dict, spec: dict, blobs: _Blobs) -> dict:
    """Where `device`, the model, the batch and the output are, read through torch's own C
    accessors (a notebook that patches torch.Tensor.device does not change what is read)."""
    device = namespace.get("device")
    model = namespace.get("resnet_model")
    kinds = set()
    if isinstance(model, nn.Module):
        for module in model.modules():
            for tensor in list(vars(module).get("_parameters", {}).values()) + list(vars(module).get("_buffers", {}).values()):
                if isinstance(tensor, _tensor_type):
                    kinds.add(_tensor_device(tensor))
    return {
        "device": {"type": _device_type(device), "defined": "device" in namespace},
        "model": sorted(kinds) if kinds else None,
        "images": _tensor_device(namespace.get("images")),
        "output": _tensor_device(namespace.get("output")),
    }


def prepare(plan: dict) -> None:
    """Compute what the plan's probes derive from its seed before forking (no student data)."""
    for cell in plan["cells"]:
        for spec in cell.get("probes", ()):
            if spec["op"] == "resnet":
                make_resnet_params(spec["seed"])


def run_probes(probes: list[dict], namespace: dict, *, world: str, mode: str,
               describe_error: Callable[[BaseException], dict]) -> tuple[list[dict], list[bytes]]:
    """Run one graded item's probes; a probe that raises reports the student's error instead."""
    blobs = _Blobs()
    results = []
    for spec in probes:
        op = spec["op"]
        try:
            if op == "block_shapes":
                out = probe_block_shapes(namespace, spec, blobs)
            elif op == "block_numeric":
                out = probe_block_numeric(namespace, spec, blobs, describe_error)
            elif op == "resnet":
                out = probe_resnet(namespace, spec, blobs, describe_error)
            elif op == "shapes":
                out = probe_shapes(namespace, spec, blobs)
            elif op == "device":
                out = probe_device(namespace, spec, blobs)
            else:
                out = {"error": {"type": "ProbeError", "message": f"unknown probe {op!r}"}}
        except Exception as exc:
            out = {"error": describe_error(exc)}
        results.append({"id": spec["id"], "op": op, "world": world, "mode": mode, **out})
    return results, blobs.items

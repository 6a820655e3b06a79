"""Reading what the sandbox sent back (trusted side), strictly: plain values and arrays only.

A frame is ``NB10 <nonce> <seq> <meta length> <blob lengths...>\\n`` followed by ``repr()`` of
a dict of plain values (read back with ``ast.literal_eval``, never ``eval``) and raw float32
bytes. A frame with the wrong nonce, a sequence number out of order or a malformed header ends
the stream: nothing after it is believed, and the run is marked as tampered with.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_META = 4 << 20


@dataclass(repr=False)  # short: pytest shows the graders' arguments when a check fails
class World:
    name: str
    mode: str | None = None
    cuda: bool | None = None
    gpu_warm_up_seconds: float | None = None  # creating the CUDA context before the first cell
    cells: dict[int, dict] = field(default_factory=dict)
    probes: dict[str, dict] = field(default_factory=dict)  # probe id -> result
    items_probed: set[str] = field(default_factory=set)
    done: bool = False
    problem: str | None = None  # why the stream ended early or was cut

    def __repr__(self) -> str:
        return f"<World {self.name!r}, mode {self.mode!r}, {len(self.cells)} cells, {len(self.probes)} probes>"


def _resolve(value: Any, blobs: list[bytes]) -> Any:
    """Replace {"blob": i, "shape": [...], "count": n} by a numpy array."""
    if isinstance(value, dict):
        if set(value) == {"blob", "shape", "count"}:
            if not (type(value["blob"]) is int and type(value["count"]) is int and isinstance(value["shape"], list)
                    and all(type(n) is int and 0 <= n < 1 << 31 for n in value["shape"])):
                raise ValueError("malformed array header")
            data = np.frombuffer(blobs[value["blob"]], dtype=np.float32)
            shape = value["shape"]
            if data.size != value["count"]:
                raise ValueError("array length does not match its header")
            return data.reshape(shape) if data.size == int(np.prod(shape)) else data
        return {k: _resolve(v, blobs) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, blobs) for v in value]
    return value


def parse(stream: bytes, nonce: str, world: str) -> World:
    out = World(world)
    pos, seq = 0, 0
    while pos < len(stream):
        end = stream.find(b"\n", pos, pos + 512)
        if end < 0:
            out.problem = "the evidence stream was cut off mid-frame"
            break
        parts = stream[pos:end].split(b" ")
        try:
            if parts[0] != b"NB10" or parts[1].decode() != nonce or int(parts[2]) != seq:
                raise ValueError("frame header")
            meta_len, blob_lens = int(parts[3]), [int(p) for p in parts[4:] if p]
            if meta_len > MAX_META:
                raise ValueError("oversized frame")
            body_end = end + 1 + meta_len
            meta = ast.literal_eval(stream[end + 1:body_end].decode())
            blobs, cursor = [], body_end
            for n in blob_lens:
                blobs.append(stream[cursor:cursor + n])
                cursor += n
            if cursor > len(stream):
                out.problem = "the evidence stream was cut off mid-frame"
                break
            meta = _resolve(meta, blobs)
            _record(out, meta)
        except Exception:  # whatever is malformed in what the sandbox wrote, nothing after it is believed
            out.problem = "tampered: the evidence stream holds a frame the grader did not write"
            break
        pos, seq = cursor, seq + 1
    return out


def _record(world: World, meta: dict) -> None:
    kind = meta.get("kind")
    if kind == "world":
        world.mode, world.cuda = meta.get("mode"), meta.get("cuda")
        world.gpu_warm_up_seconds = meta.get("gpu_warm_up_seconds")
    elif kind == "cell":
        world.cells[int(meta["index"])] = meta
    elif kind == "probe":
        world.items_probed.add(meta["item"])
        for result in meta["results"]:
            world.probes[result["id"]] = result
    elif kind == "done":
        world.done = True

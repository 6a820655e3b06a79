"""Reading what the sandbox sent back (trusted side), strictly: signed frames of plain values only.

A frame is ``NB10 <seq> <hmac> <meta length> <blob lengths...>\\n`` followed by ``repr()`` of a
dict of plain values (read back with ``ast.literal_eval``, never ``eval``) and raw float32
bytes. The HMAC-SHA256, under the run's key, covers the sequence number, the lengths, the meta
and the blobs; only the sandbox's grader side holds the key. The signature is checked before
anything of a frame is parsed, so a notebook that writes into the channel cannot make the
trusted side parse anything it wrote. A frame with a bad signature, a sequence number out of
order, an oversized or malformed part ends the stream: nothing after it is believed, and the
run is marked as tampered with.
"""

from __future__ import annotations

import ast
import hmac
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

import numpy as np

MAX_META = 512 << 10  # a correct notebook's largest frame (a cell with capped output) is under 50 KiB
MAX_FRAMES = 4000
MAX_HEADER = 8192  # a frame's first line: its signature and the lengths of its arrays (a few hundred)
TAMPERED = "tampered: the evidence stream holds a frame the grader did not write"


@dataclass(repr=False)  # short: pytest shows the graders' arguments when a check fails
class World:
    name: str
    mode: str | None = None
    cuda: bool | None = None
    gpu_warm_up_seconds: float | None = None  # creating the CUDA context before the first cell
    cells: dict[int, dict] = field(default_factory=dict)
    probes: dict[str, dict] = field(default_factory=dict)  # probe id -> result
    items_probed: set[str] = field(default_factory=set)
    order: list[tuple] = field(default_factory=list)  # ("cell", index) / ("probe", index, deferred), as sent
    alerts: list[str] = field(default_factory=list)  # what the sandbox's guard saw the notebook try
    notes: list[str] = field(default_factory=list)  # how the sandbox side was set up (hardening)
    done: bool = False
    stopped: str | None = None  # why the world stopped before its last cell, if it did
    problem: str | None = None  # why the stream ended early or was cut

    def __repr__(self) -> str:
        return f"<World {self.name!r}, mode {self.mode!r}, {len(self.cells)} cells, {len(self.probes)} probes>"


def _resolve(value: Any, blobs: list[bytes]) -> Any:
    """Replace {"blob": i, "shape": [...], "count": n} by a numpy array."""
    if isinstance(value, dict):
        if set(value) == {"blob", "shape", "count"}:
            if not (type(value["blob"]) is int and type(value["count"]) is int and isinstance(value["shape"], list)
                    and all(type(n) is int and 0 <= n < 1 << 31 for n in value["shape"])
                    and 0 <= value["blob"] < len(blobs)):
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


def _signature(key: bytes, signed: bytes, body: bytes, blobs: list[bytes]) -> str:
    mac = hmac.new(key, signed + b"\n", sha256)
    mac.update(body)
    for blob in blobs:
        mac.update(blob)
    return mac.hexdigest()


def parse(stream: bytes, key: str, world: str) -> World:
    out = World(world)
    secret = bytes.fromhex(key) if key else b""
    pos, seq = 0, 0
    while pos < len(stream):
        end = stream.find(b"\n", pos, pos + MAX_HEADER)
        if end < 0:
            out.problem = "the evidence stream was cut off mid-frame" if len(stream) - pos < MAX_HEADER else TAMPERED
            break
        parts = stream[pos:end].split(b" ")
        try:
            if len(parts) < 4 or parts[0] != b"NB10" or int(parts[1]) != seq or seq >= MAX_FRAMES:
                raise ValueError("frame header")
            meta_len, blob_lens = int(parts[3]), [int(p) for p in parts[4:] if p]
            if not 0 <= meta_len <= MAX_META or any(n < 0 for n in blob_lens):
                raise ValueError("oversized frame")
            body_end = end + 1 + meta_len
            cursor = body_end + sum(blob_lens)
            if cursor > len(stream):
                out.problem = "the evidence stream was cut off mid-frame"
                break
            body = stream[end + 1:body_end]
            blobs, at = [], body_end
            for n in blob_lens:
                blobs.append(stream[at:at + n])
                at += n
            signed = b" ".join(parts[1:2] + parts[3:])
            if not secret or not hmac.compare_digest(_signature(secret, signed, body, blobs).encode(), parts[2]):
                raise ValueError("signature")
            meta = _resolve(ast.literal_eval(body.decode()), blobs)
            _record(out, meta)
        except Exception:  # whatever is malformed in what the sandbox wrote, nothing after it is believed
            out.problem = TAMPERED
            break
        pos, seq = cursor, seq + 1
    return out


def _strings(value: Any) -> list[str]:
    return [v for v in value if type(v) is str][:50] if isinstance(value, list) else []


def _record(world: World, meta: dict) -> None:
    kind = meta.get("kind")
    if world.done or (kind != "world") == (world.mode is None):
        raise ValueError("a frame out of order")  # the world frame comes first and once, done last
    if kind == "world":
        world.mode, world.cuda = meta.get("mode"), meta.get("cuda")
        world.gpu_warm_up_seconds = meta.get("gpu_warm_up_seconds")
        world.notes = _strings(meta.get("notes"))
    elif kind == "cell":
        index = meta["index"]
        if type(index) is not int or index in world.cells:
            raise ValueError("a cell reported twice")
        world.cells[index] = meta
        world.order.append(("cell", index))
    elif kind == "probe":
        index = meta["index"]
        if type(index) is not int:
            raise ValueError("a probe frame without its place")
        world.items_probed.add(meta["item"])
        for result in meta["results"]:
            if result["id"] in world.probes:
                raise ValueError("a check reported twice")
            world.probes[result["id"]] = result
        world.order.append(("probe", index, bool(meta.get("deferred"))))
    elif kind == "done":
        world.done = True
        world.stopped = meta.get("stopped") if type(meta.get("stopped")) is str else None
    else:
        raise ValueError("unknown frame")
    for alert in _strings(meta.get("alerts")):
        if alert not in world.alerts:
            world.alerts.append(alert)

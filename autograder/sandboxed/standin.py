"""A synthetic, offline stand-in for PneumoniaMNIST, in medmnist's exact file format.

The notebook keeps medmnist's real call, ``PneumoniaMNIST(split='val', ..., download=True)``.
Online, that downloads the real data set to ``~/.medmnist`` and checks its MD5. Tests, CI,
the demo and grading machines have no internet, so this module

* writes ``pneumoniamnist.npz`` deterministically (same bytes on every run): the split sizes,
  dtypes and shapes medmnist asserts (train 4708, val 524, test 624 uint8 28x28 images,
  uint8 labels shaped (N, 1)), with simple drawn chests; the "pneumonia" ones carry cloudy
  patches. The images are synthetic: they only stand in for the format.
* lets medmnist find it: a process started with ``MEDMNIST_STANDIN=<folder>`` (and this
  package installed, which puts a one-line hook in site-packages) has medmnist's default root
  pointed at that folder and the stand-in's MD5 accepted in place of the real one. Without
  the variable nothing changes, and medmnist downloads and verifies the real file as usual.

    python -m autograder.sandboxed.standin setup      # write the data (if missing) and install the hook
    python -m autograder.sandboxed.standin check      # load all three splits through medmnist
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.abc
import importlib.util
import io
import json
import os
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

FLAG = "pneumoniamnist"
FILENAME = f"{FLAG}.npz"
SIDECAR = f"{FILENAME}.standin.json"
SPLITS = {"train": 4708, "val": 524, "test": 624}
SEED = 20261126
ENV = "MEDMNIST_STANDIN"
PTH_NAME = "nb10_medmnist_standin.pth"
# One line, executed by `site` at interpreter start: a no-op unless MEDMNIST_STANDIN is set.
PTH_LINE = f'import os; os.environ.get("{ENV}") and __import__("autograder.sandboxed.standin").sandboxed.standin.activate_from_env()\n'
NOTE = "synthetic stand-in for PneumoniaMNIST (drawn shapes, not X-rays)"


def _draw(rng: Any, n: int, labels: Any) -> Any:
    """n synthetic 28x28 'chest' images; label 1 adds bright cloudy patches in a lung."""
    import numpy as np

    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    yy, xx = yy[None], xx[None]

    def jitter(scale: float, size: int = n) -> Any:
        return rng.normal(0.0, scale, size=size).astype(np.float32)[:, None, None]

    cx, cy = 13.5 + jitter(0.8), 14.0 + jitter(0.8)
    body = ((xx - cx) / (11.5 + jitter(0.6))) ** 2 + ((yy - cy) / (13.5 + jitter(0.6))) ** 2 < 1.0
    img = 25.0 + 95.0 * body
    for side in (-1.0, 1.0):  # two dark lung fields
        lx = cx + side * (5.0 + jitter(0.4))
        lung = ((xx - lx) / (3.6 + jitter(0.3))) ** 2 + ((yy - cy + 1.0) / (8.0 + jitter(0.5))) ** 2 < 1.0
        img = np.where(lung, 55.0 + jitter(6.0), img)
    img = img + 70.0 * (np.abs(xx - cx) < 1.2) * body  # spine
    sick = labels.astype(bool)[:, None, None]
    px = cx + np.where(rng.random(n) < 0.5, -5.0, 5.0).astype(np.float32)[:, None, None] + jitter(1.0)
    py = cy + jitter(3.0)
    patch = np.exp(-(((xx - px) ** 2 + (yy - py) ** 2) / (2.0 * (2.0 + jitter(0.4) ** 2) ** 2)))
    img = img + sick * 80.0 * patch
    img = img + rng.normal(0.0, 8.0, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def build_arrays(seed: int = SEED) -> dict[str, Any]:
    """The stand-in's arrays, keyed like medmnist's npz files."""
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays: dict[str, Any] = {}
    for split, n in SPLITS.items():
        labels = (rng.random(n) < 0.74).astype(np.uint8)  # about the real pneumonia share
        arrays[f"{split}_images"] = _draw(rng, n, labels)
        arrays[f"{split}_labels"] = labels[:, None]
    return arrays


def npz_bytes(arrays: dict[str, Any]) -> bytes:
    """An .npz archive with fixed timestamps, so the same arrays always give the same bytes."""
    import numpy as np

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


_md5_seen: dict[tuple, str] = {}


def md5_of(path: Path) -> str:
    """The file's MD5, computed again only when the file changed (the grader asks once per submission)."""
    st = path.stat()
    key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _md5_seen:
        if len(_md5_seen) > 8:
            _md5_seen.clear()
        _md5_seen[key] = hashlib.md5(path.read_bytes()).hexdigest()
    return _md5_seen[key]


def write(root: Path, seed: int = SEED) -> Path:
    """Write the stand-in and its sidecar (which records the MD5) into root; return the npz path."""
    root.mkdir(parents=True, exist_ok=True)
    data = npz_bytes(build_arrays(seed))
    target = root / FILENAME
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    sidecar = {"md5": hashlib.md5(data).hexdigest(), "seed": seed, "note": NOTE}
    (root / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
    return target


def is_current(root: Path) -> bool:
    """True when root holds a stand-in whose bytes match its sidecar."""
    try:
        recorded = json.loads((root / SIDECAR).read_text())["md5"]
        return md5_of(root / FILENAME) == recorded
    except (OSError, KeyError, ValueError):
        return False


class StandinError(RuntimeError):
    pass


def _recorded_md5(root: Path) -> str:
    if not is_current(root):
        raise StandinError(
            f"{ENV}={root} but that folder holds no intact stand-in ({FILENAME} with a matching "
            f"{SIDECAR}). Run `python -m autograder.sandboxed.standin setup` (or `make demo`) to write it, "
            f"or unset {ENV} to use the real data set."
        )
    return json.loads((root / SIDECAR).read_text())["md5"]


def _patch(root: Path, md5: str) -> None:
    """Point medmnist's default root at root and accept the stand-in's MD5 (medmnist.info loaded)."""
    info = sys.modules["medmnist.info"]
    old_root = info.DEFAULT_ROOT
    info.DEFAULT_ROOT = str(root)
    info.INFO[FLAG]["MD5"] = md5
    dataset = sys.modules.get("medmnist.dataset")
    if dataset is not None:  # already imported: its __init__ bound the old default root
        init = dataset.MedMNIST.__init__
        init.__defaults__ = tuple(str(root) if d == old_root else d for d in init.__defaults__)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs _patch right after medmnist.info executes, before medmnist.dataset reads it."""

    def __init__(self, root: Path, md5: str) -> None:
        self.root, self.md5 = root, md5

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "medmnist.info":
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        loader_exec = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            loader_exec(module)
            _patch(self.root, self.md5)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def activate(root: Path) -> None:
    """In this process, make medmnist load the stand-in in root as if it were the real file."""
    md5 = _recorded_md5(root)
    if "medmnist.info" in sys.modules:
        _patch(root, md5)
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(root, md5))


def activate_from_env() -> None:
    """The site hook: activate the folder named by MEDMNIST_STANDIN, or say why not."""
    try:
        activate(Path(os.environ[ENV]).resolve())
    except StandinError as exc:
        print(f"warning: {exc}", file=sys.stderr)


def configured_root() -> Path | None:
    """The stand-in folder the grader should use: MEDMNIST_STANDIN if set (empty means the
    real data set), else this course's .data/medmnist when a stand-in is there."""
    if ENV in os.environ:
        return Path(os.environ[ENV]).resolve() if os.environ[ENV] else None
    default = Path(__file__).resolve().parents[2] / ".data" / "medmnist"
    return default if is_current(default) else None


def install_hook() -> Path:
    """Put the one-line .pth hook into this interpreter's site-packages."""
    target = Path(sysconfig.get_paths()["purelib"]) / PTH_NAME
    if not target.exists() or target.read_text() != PTH_LINE:
        target.write_text(PTH_LINE)
    return target


def check(root: Path) -> dict[str, int]:
    """Load every split through medmnist's real PneumoniaMNIST class; return their sizes."""
    activate(root)
    from medmnist import PneumoniaMNIST

    return {split: len(PneumoniaMNIST(split=split, download=True)) for split in SPLITS}


def main(argv: list[str] | None = None) -> int:
    from autograder.course import COURSE

    parser = argparse.ArgumentParser(prog="python -m autograder.sandboxed.standin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["setup", "check"])
    parser.add_argument("--root", type=Path, default=COURSE.data_dir,
                        help=f"folder for {FILENAME} (default: {COURSE.data_dir})")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.command == "setup":
        if not is_current(root):
            write(root)
            if not args.quiet:
                print(f"wrote {root / FILENAME} ({NOTE})")
        hook = install_hook()
        if not args.quiet:
            print(f"hook: {hook}; use it with {ENV}={root}")
        return 0
    sizes = check(root)
    print(f"medmnist loaded the stand-in from {root}: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

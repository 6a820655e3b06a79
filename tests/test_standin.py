import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np

from autograder.sandboxed import standin

LOAD_ALL_SPLITS = textwrap.dedent("""
    from medmnist import PneumoniaMNIST
    for split in ("train", "val", "test"):
        ds = PneumoniaMNIST(split=split, download=True)
        image, label = ds[0]
        print(split, len(ds), ds.imgs.dtype, ds.imgs.shape[1:], ds.labels.shape[1:], image.size)
""")


def run_python(code, env):
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_the_stand_in_is_the_same_bytes_every_time(tmp_path):
    first = standin.write(tmp_path / "a").read_bytes()
    second = standin.write(tmp_path / "b").read_bytes()
    assert hashlib.md5(first).hexdigest() == hashlib.md5(second).hexdigest()


def test_the_stand_in_has_medmnist_s_schema(tmp_path):
    data = np.load(standin.write(tmp_path))
    assert sorted(data.files) == sorted(f"{s}_{k}" for s in standin.SPLITS for k in ("images", "labels"))
    for split, n in standin.SPLITS.items():
        assert data[f"{split}_images"].shape == (n, 28, 28)
        assert data[f"{split}_images"].dtype == np.uint8
        assert data[f"{split}_labels"].shape == (n, 1)
        assert set(np.unique(data[f"{split}_labels"])) == {0, 1}


def test_medmnist_s_real_class_loads_every_split_through_the_installed_hook(tmp_path):
    root = tmp_path / "data"
    standin.write(root)
    env = dict(os.environ, MEDMNIST_STANDIN=str(root), HOME=str(tmp_path / "home"))
    proc = run_python(LOAD_ALL_SPLITS, env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == [
        "train 4708 uint8 (28, 28) (1,) (28, 28)",
        "val 524 uint8 (28, 28) (1,) (28, 28)",
        "test 624 uint8 (28, 28) (1,) (28, 28)",
    ]


def test_without_the_variable_medmnist_still_insists_on_the_real_file(tmp_path):
    home = tmp_path / "home"
    standin.write(home / ".medmnist")  # the stand-in where the real file would go
    env = {k: v for k, v in os.environ.items() if k != standin.ENV}
    env.update(HOME=str(home), HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    proc = run_python(LOAD_ALL_SPLITS, env)
    assert proc.returncode != 0
    assert "download" in proc.stderr.lower()


def test_a_variable_naming_an_empty_folder_says_what_to_do(tmp_path):
    env = dict(os.environ, MEDMNIST_STANDIN=str(tmp_path), HOME=str(tmp_path / "home"))
    proc = run_python("import medmnist", env)
    assert "python -m autograder.sandboxed.standin setup" in proc.stderr


def test_check_reports_the_three_split_sizes(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "autograder.sandboxed.standin", "check", "--root", str(standin.write(tmp_path).parent)],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, HOME=str(tmp_path / "home")))
    assert proc.returncode == 0, proc.stderr
    assert "{'train': 4708, 'val': 524, 'test': 624}" in proc.stdout

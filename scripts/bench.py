"""`make bench`: stock `nbgrader autograde` against `autograder autograde`, side by side, one run.

Builds N submissions (default 40: about half correct, a third buggy, the rest the blank
release) into two fresh copies of the course, times stock nbgrader (in-kernel execution, one
submission at a time) on one and ours on the other, each as the command an instructor runs, in
a fresh process, with the same stand-in data, and prints both times, the ratio, submissions
per second, both mean scores (a check that both sides really ran the notebooks), warm latency
for one submission and peak memory. It prints; it does not assert. `--ours-only --n 1000`
times our side alone on a large class.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder import assignment, engine, sandbox  # noqa: E402
from autograder.sandboxed import standin  # noqa: E402
from autograder.course import COURSE, Course  # noqa: E402
from assignments.notebook10 import NOTEBOOK  # noqa: E402

STOCK_PIPELINE = """
# Stock nbgrader: execute each submission in a kernel next to the visible test cells.
from nbgrader.preprocessors import Execute
c.Autograde.autograde_preprocessors = [Execute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                       SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
"""


def mix(n: int) -> list[Path]:
    cases = REPO / "tests" / "submissions"
    correct = sorted((cases / "correct").glob("*.ipynb"))
    buggy = sorted((cases / "bugs").glob("*.ipynb"))
    blank = [COURSE.release() / NOTEBOOK]
    pattern = [correct] * 9 + [buggy] * 7 + [blank] * 4  # 45% correct, 35% buggy, 20% blank
    picks, counters = [], {}
    for i in range(n):
        group = pattern[i % len(pattern)]
        k = counters.get(id(group), 0)
        counters[id(group)] = k + 1
        picks.append(group[k % len(group)])
    return picks


def make_course(root: Path, notebooks: list[Path], stock: bool) -> Course:
    root.mkdir(parents=True)
    shutil.copy2(COURSE.config_file, root / "nbgrader_config.py")
    if stock:
        with open(root / "nbgrader_config.py", "a") as f:
            f.write(STOCK_PIPELINE)
    shutil.copytree(COURSE.source(), root / "source" / "notebook10")
    course = Course(root)
    assignment.generate_release(course)
    for i, nb in enumerate(notebooks):
        target = course.submitted(f"student{i:04d}")
        target.mkdir(parents=True)
        shutil.copy(nb, target / NOTEBOOK)
    return course


class RssSampler(threading.Thread):
    """Peak resident memory of the zygote processes, sampled every 0.2 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.running = 0, True

    def run(self) -> None:
        while self.running:
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    if b"zygote.serve" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                            if line.startswith("VmRSS:"):
                                self.peak = max(self.peak, int(line.split()[1]) * 1024)
                except OSError:
                    pass
            time.sleep(0.2)


def timed(cmd: list[str], course: Course) -> float:
    """Wall seconds of one command run in the course directory (a fresh process, as an instructor runs it)."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=course.root, env=assignment.tool_env(course), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd[1:4])} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds


def time_stock(course: Course) -> float:
    return timed([sys.executable, "-m", "nbgrader", "autograde", "notebook10"], course)


def time_ours(course: Course, workers: int) -> tuple[float, int]:
    sampler = RssSampler()
    sampler.start()
    try:
        return timed([sys.executable, "-m", "autograder.cli", "autograde", "notebook10", "--workers", str(workers),
                      "--course", str(course.root)], course), sampler.peak
    finally:
        sampler.running = False
        sampler.join()


def gradebook_scores(course: Course) -> dict[str, float]:
    """Each student's total score in the course's gradebook (whoever graded it)."""
    return {student: sum(cells.values()) for student, cells in assignment.gradebook_scores(course).items()}


def sandbox_peaks(course: Course) -> list[int]:
    peaks = []
    for path in course.root.glob("autograded/*/notebook10/*.results.json"):
        peak = json.loads(path.read_text())["extra_data"].get("peak_memory_bytes")
        if peak:
            peaks.append(peak)
    return peaks


def warm_latency(notebook: Path, repeats: int = 5) -> list[float]:
    """Seconds to grade one submission on a warm pool, `repeats` times (sorted)."""
    pool = sandbox.warm_pool(1)
    try:
        item = [("warm-up", lambda: notebook.read_bytes())]
        list(engine.grade_stream(item, pool=pool, batch=1, assignment="notebook10"))  # first one warms the graders too
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            list(engine.grade_stream([("timed", lambda: notebook.read_bytes())], pool=pool, batch=1, assignment="notebook10"))
            times.append(time.perf_counter() - started)
        return sorted(times)
    finally:
        if pool is not None:
            pool.close()


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=int(os.environ.get("N", 40)), help="submissions (default 40)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--ours-only", action="store_true", help="skip stock nbgrader (for large N)")
    args = parser.parse_args()
    notebooks = mix(args.n)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"Benchmark: {args.n} submissions on {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"sandbox: {sandbox.check_available()}", flush=True)
    # Both sides load the same synthetic PneumoniaMNIST (a stock kernel cannot download it offline).
    data = COURSE.data_dir
    if not standin.is_current(data):
        raise SystemExit(f"bench: no stand-in data in {data}: run `make demo` (or `python -m autograder.sandboxed.standin setup`)")
    os.environ["MEDMNIST_STANDIN"] = str(data)
    with tempfile.TemporaryDirectory(prefix="nb10-bench-") as tmp:
        ours_course = make_course(Path(tmp) / "ours", notebooks, stock=False)
        ours, zygote_rss = time_ours(ours_course, args.workers)
        peaks = sandbox_peaks(ours_course)
        ours_scores = gradebook_scores(ours_course)
        if len(ours_scores) != args.n:
            raise SystemExit(f"bench: our run recorded {len(ours_scores)} of {args.n} submissions")
        print(f"  autograder autograde --workers {args.workers}: {ours:8.1f} s  ({ours / args.n:.2f} s per submission, "
              f"{args.n / ours:.2f} submissions/s)", flush=True)
        if not args.ours_only:
            stock_course = make_course(Path(tmp) / "stock", notebooks, stock=True)
            stock = time_stock(stock_course)
            print(f"  stock nbgrader autograde:        {stock:8.1f} s  ({stock / args.n:.2f} s per submission, "
                  f"{args.n / stock:.2f} submissions/s)")
            # This machine's speed drifts over minutes: ours runs again after stock, on a fresh
            # copy, and the ratio is taken against the mean of the two runs (both printed).
            again, _ = time_ours(make_course(Path(tmp) / "ours-again", notebooks, stock=False), args.workers)
            print(f"  autograder autograde again:      {again:8.1f} s  (after stock, on a fresh copy)")
            first, ours = ours, (ours + again) / 2
            print(f"  ratio (stock / ours, mean of our two runs): {stock / ours:.1f}x "
                  f"(from {stock / max(first, again):.1f}x to {stock / min(first, again):.1f}x)")
            stock_scores = gradebook_scores(stock_course)
            print(f"  mean score: ours {sum(ours_scores.values()) / args.n:.2f}, stock {sum(stock_scores.values()) / args.n:.2f} "
                  f"(stock scores only the visible checks, ours the hidden graders too)")
        latency = warm_latency(COURSE.source() / NOTEBOOK)
        print(f"  warm latency for a single submission: {latency[len(latency) // 2]:.2f} s median of {len(latency)} "
              f"(from {latency[0]:.2f} to {latency[-1]:.2f} s)")
        print(f"  peak memory per worker: zygote {gib(zygote_rss)} resident (shared with its forks), "
              f"plus at most {gib(max(peaks, default=0))} per submission sandbox (memory cgroup peak)")
        print(f"  1000 submissions at this rate: {1000 * ours / args.n / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())

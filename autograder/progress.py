"""A progress bar with rate and ETA on stderr: redrawn in place on a terminal, and as a plain
line every few seconds (and at the end) when stderr is a log file."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, stream=None, every: float = 5.0) -> None:
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.started = self.last = time.perf_counter()
        self.every = every

    def advance(self, n: int = 1, note: str = "") -> None:
        self.done += n
        if self.live:
            self.stream.write("\r" + self.line(note) + "\033[K")
        elif time.perf_counter() - self.last >= self.every or self.done == self.total:
            self.last = time.perf_counter()
            self.stream.write(self.line(note) + "\n")
        self.stream.flush()

    def line(self, note: str = "") -> str:
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        eta_text = "--" if eta == float("inf") else f"{int(eta // 60)}m{int(eta % 60):02d}s"
        return (f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"{rate:.2f}/s ETA {eta_text} {note}").rstrip()

    def close(self) -> None:
        if self.live and self.done:
            self.stream.write("\n")
            self.stream.flush()

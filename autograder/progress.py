"""A one-line progress bar with rate and ETA, on stderr (only when it is a terminal, unless forced)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, stream=None, force: bool = False) -> None:
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.live = force or self.stream.isatty()
        self.started = time.perf_counter()

    def advance(self, n: int = 1, note: str = "") -> None:
        self.done += n
        if self.live:
            self.stream.write("\r" + self.line(note) + "\033[K")
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
        if self.live:
            self.stream.write("\n")
            self.stream.flush()

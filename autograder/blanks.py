"""Inline blanks: how a solution line says what the student sees instead.

A line of solution code carries a trailing marker comment with the student's version of a
fragment of that line, each blank written as ``___``::

    self.bn1 = nn.BatchNorm2d(out_channels)  # STUDENT SEES: nn.BatchNorm2d(___)

The fragment is matched against the code (each ``___`` standing for a non-empty span), the
spans become ``___`` and the marker comment goes. Matching is strict: the fragment must match
exactly one place in the line, so a typo in a marker is an error at generate time rather
than a release that leaks the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MARKER = "# STUDENT SEES:"
BLANK = "___"


class BlankMarkerError(ValueError):
    """A marker that does not describe its line; the message names the line and the fix."""


@dataclass(frozen=True)
class Blank:
    """One blanked span: the solution text it hides and its place (line index) in the cell."""

    line: int
    answer: str


def _pattern(fragment: str) -> re.Pattern[str]:
    pieces = fragment.split(BLANK)
    regex = ""
    for i, piece in enumerate(pieces):
        regex += re.escape(piece)
        if i < len(pieces) - 1:
            # a blank at the very end of the fragment takes the rest of the code
            regex += "(.+)" if (i == len(pieces) - 2 and pieces[-1] == "") else "(.+?)"
    return re.compile(regex)


def blank_line(line: str, lineno: int = 0) -> tuple[str, list[Blank]]:
    """Return the student's version of one line, and the spans it blanked."""
    at = line.find(MARKER)
    if at < 0:
        return line, []
    code, fragment = line[:at].rstrip(), line[at + len(MARKER):].strip()
    where = f"line {lineno + 1} ({line.strip()!r})"
    if BLANK not in fragment:
        raise BlankMarkerError(f"{where}: the fragment after {MARKER!r} has no {BLANK!r} in it.")
    pattern = _pattern(fragment)
    match = pattern.search(code)
    if match is None:
        raise BlankMarkerError(
            f"{where}: {fragment!r} does not match the code. Write the fragment exactly as the "
            f"code reads, with {BLANK} in place of each part the student fills in.")
    if pattern.search(code, match.start() + 1) is not None:
        raise BlankMarkerError(f"{where}: {fragment!r} matches more than one place; make it longer.")
    answers = list(match.groups())
    if any(not a.strip() or BLANK in a for a in answers):
        raise BlankMarkerError(f"{where}: a blank in {fragment!r} would hide nothing.")
    student = code[:match.start()] + fragment + code[match.end():]
    return student, [Blank(lineno, a.strip()) for a in answers]


def blank_source(source: str) -> tuple[str, list[Blank]]:
    """Blank every marked line of a cell's source."""
    lines, found = [], []
    for i, line in enumerate(source.split("\n")):
        student, blanks = blank_line(line, i)
        lines.append(student)
        found.extend(blanks)
    return "\n".join(lines), found


def strip_markers(source: str) -> str:
    """The solution with the marker comments removed (for the solutions handed out)."""
    return "\n".join(line[:line.find(MARKER)].rstrip() if MARKER in line else line
                     for line in source.split("\n"))

"""How a submission case is written: edits applied to a correct student notebook.

A case is a `Case(group, name, edits, expect, why)`. The base is what a student who filled
every blank correctly would submit: the release notebook with each exercise cell replaced by
the solution (marker comments removed). Edits (applied in order):

    Sub(cell, old, new)        replace text in a cell (cell = its nbgrader grade_id); `old` must occur
    Replace(cell, source)      replace a cell's whole source
    InsertAfter(cell, source)  add a new code cell after that cell (cell=None: at the end)
    Delete(cell)               remove the cell
    RawFile(text)              the file is this text, not a notebook built from the base

`expect` gives the item scores that differ from full marks, e.g. {"device_placement": 1.5};
items not named are expected to score full marks. `why` says in a sentence what the case is.
`review` says whether grading must mark the submission for a person to review (a hostile or
broken submission); an honest one never is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ITEM_MAX = {"residual_block_shapes": 3.0, "shortcut_projection": 3.0, "resnet18_adaptation": 2.0,
            "device_placement": 2.0}


@dataclass(frozen=True)
class Sub:
    cell: str
    old: str
    new: str


@dataclass(frozen=True)
class Replace:
    cell: str
    source: str


@dataclass(frozen=True)
class InsertAfter:
    cell: str | None
    source: str


@dataclass(frozen=True)
class Delete:
    cell: str


@dataclass(frozen=True)
class RawFile:
    text: str


@dataclass(frozen=True)
class Case:
    group: str  # "correct", "bugs" or "hostile"
    name: str   # file name without .ipynb, PrairieLearn style: what it is + expected outcome
    edits: tuple = ()
    expect: dict = field(default_factory=dict)
    why: str = ""
    review: bool = False

    def expected(self) -> dict[str, float]:
        return {item: float(self.expect.get(item, full)) for item, full in ITEM_MAX.items()}

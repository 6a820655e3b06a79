"""`autograder audit`: the mutants, the plain-PyTorch oracle, and the fixed subset CI grades."""

import pytest

from assignments.notebook10 import audit


@pytest.fixture(scope="module")
def solution():
    return audit.solution_cells()


@pytest.fixture(scope="module")
def every(solution):
    return {m.id: m for m in audit.mutants(solution)}


def test_the_mutants_change_every_answer_cell_with_every_operator(every):
    assert len(every) >= 150
    assert {m.cell for m in every.values()} == set(audit.ANSWER_CELLS)
    operators = {key.split(":")[1] for key in every}
    assert {"drop", "swap", "int", "bool", "str", "compare", "boolop", "augop", "name", "swap_args", "unwrap",
            "detach"} <= operators
    assert len({m.source for m in every.values()}) == len(every), "two mutants are the same program"
    assert set(audit.SUBSET) <= set(every), "a mutant of the CI subset no longer exists"


def test_the_shortcut_lines_are_the_ones_that_build_or_add_the_shortcut(every):
    assert every["residual_block:compare:0"].shortcut_site  # the projection's condition
    assert every["residual_block:detach:5"].shortcut_site  # out += self.shortcut(x).detach()
    assert every["residual_block:drop:10"].shortcut_site  # the final ReLU
    assert not every["residual_block:int:4"].shortcut_site  # conv1's padding
    assert not every["residual_block:detach:2"].shortcut_site  # the main path


@pytest.fixture(scope="module")
def oracle(solution):
    from autograder.sandboxed import standin

    root = standin.configured_root()
    if root is not None:
        standin.activate(root)
    return audit.Oracle(solution)


@pytest.mark.parametrize("mutant, groups", [
    ("residual_block_demo:swap:0", set()),  # the demo's block made after its input: the same program
    ("setup:int:0", set()),  # another seed
    ("resnet18_adaptation:drop:5", set()),  # a print that is not graded
    ("residual_block:int:4", {"block", "demo"}),  # conv1 without padding: nothing fits
    ("residual_block:detach:5", {"block"}),  # the shortcut detached: only the gradients differ
    ("residual_block_demo:unwrap:0", {"device"}),  # a demo block never sent to device
    ("setup:str:1", {"device"}),  # the GPU hard-coded: a device mistake, the rest compared where it runs
    ("resnet18_adaptation:drop:3", {"resnet"}),  # ImageNet's classifier kept
])
def test_the_oracle_sees_what_a_teacher_would(oracle, solution, every, mutant, groups):
    m = every[mutant]
    assert set(oracle.differences(dict(solution, **{m.cell: m.source}))) == groups


@pytest.mark.slow
def test_the_audit_subset_kills_every_mistake_and_spares_every_equivalent():
    """What CI runs of `make audit`: the fixed subset, graded by the engine in one class run."""
    report = audit.audit(audit.SUBSET, workers=2, progress=lambda text: None)
    assert report["control_ok"], report["control"]
    kinds = {v.mutant.id: v.kind for v in report["verdicts"]}
    assert kinds["residual_block_demo:swap:0"] == "equivalent"
    assert kinds["resnet18_adaptation:drop:5"] == "equivalent"
    assert not [k for k, kind in kinds.items() if kind not in ("killed", "equivalent")], audit.summary(report)

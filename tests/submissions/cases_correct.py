"""Correct submissions written in other reasonable ways: every one must get full marks."""

from tests.submissions.case import Case, Sub

CASES = [
    Case("correct", "correct_solution_as_released_success_score_full", (),
         why="the blanks filled exactly as in the solution"),
    Case("correct", "correct_identity_module_shortcut_success_score_full",
         (Sub("residual_block", "self.shortcut = nn.Sequential()\n", "self.shortcut = nn.Identity()\n"),),
         why="nn.Identity() instead of an empty nn.Sequential as the identity shortcut"),
]

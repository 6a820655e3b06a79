"""Real mistakes: each loses exactly the points of what it breaks."""

from tests.submissions.case import Case, Sub

CASES = [
    Case("bugs", "bug_no_padding_score_partial",
         (Sub("residual_block", "kernel_size=3, stride=stride, padding=1, bias=False)",
              "kernel_size=3, stride=stride, padding=0, bias=False)"),),
         expect={"residual_block_shapes": 0.0, "shortcut_projection": 2.0},
         why="conv1 without padding: the main path shrinks, the addition fails, the shapes are all wrong"),
]

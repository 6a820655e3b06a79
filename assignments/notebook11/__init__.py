"""Notebook 11 (segmentation with U-Net, synthetic shapes): its plug-in (see autograder/plugins.py).

The instructor's notebook is source/notebook11/notebook11.ipynb. Here: the hidden graders
(graders/, one module per graded item), the sandbox-side probes and the seeded contract both sides
share (probes.py, seeded.py: SANDBOX), the reference computations the graders compare with
(reference.py, over unet_reference.py), the notebook's data generator (shapes.py), and the visible
self-checks' notebook side (selfcheck.py), which words each mistake with graders/messages.py as the
graders do.
"""

NOTEBOOK = "notebook11.ipynb"
ITEMS = {  # item -> the test cell that holds its points
    "double_conv": "test_double_conv",
    "down_up": "test_down_up_shapes",
    "unet_output": "test_unet_output",
    "device_placement": "test_device_placement",
}
GRADERS = ("double_conv", "down_up", "unet_output", "device_placement")
SANDBOX = ("probes.py", "seeded.py")  # copied into the sandbox as nb10_sandbox.plugins.notebook11
SELF_CHECKS = ("graders/messages.py", "selfcheck.py")  # the release's helper cell, in this order

# The demo's example class: student -> (notebook, relative to the repository root; the total the
# catalogue expects, tests/submissions/build.py). A correct notebook, a mistake, a hostile one, and
# the release as a student receives it, blanks unfilled.
EXAMPLE_CLASS = {
    "ada": ("assignments/notebook11/tests/submissions/correct_solution_score_full.ipynb", 10.0),
    "ben": ("assignments/notebook11/tests/submissions/bug_up_skip_second_score_up_only.ipynb", 8.0),
    "cy": ("assignments/notebook11/tests/submissions/hostile_double_conv_returns_zeros_score_no_values.ipynb", 2.25),
    "dee": ("release/notebook11/notebook11.ipynb", 0.0),
}

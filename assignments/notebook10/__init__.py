"""Notebook 10 (residual blocks, ResNet18 for PneumoniaMNIST): its plug-in (see autograder/plugins.py).

The instructor's notebook is source/notebook10/notebook10.ipynb. Here: the hidden graders
(graders/, one module per graded item), the messages they and the notebook's self-checks share
(graders/messages.py), the reference computations they compare with (reference.py), the
sandbox side (probes.py, the notebook-thread jobs.py, and seeded.py: the seeded-parameter
contract both sides use), the report's blank-site map (sites.py), the demo's example class, the
audit (audit.py) and the figures (figures.py).
"""

NOTEBOOK = "notebook10.ipynb"
ITEMS = {  # item -> the test cell that holds its points
    "residual_block_shapes": "test_residual_block_shapes",
    "shortcut_projection": "test_shortcut_projection",
    "resnet18_adaptation": "test_resnet18_adaptation",
    "device_placement": "test_device_placement",
}
GRADERS = ("residual_block_shapes", "shortcut_projection", "resnet18_adaptation", "device_placement")
SELF_CHECKS = ("graders/messages.py", "selfcheck.py")  # the release's helper cell, in this order
SANDBOX = ("probes.py", "seeded.py", "jobs.py")  # copied into the sandbox as nb10_sandbox.plugins.notebook10
# `make demo`'s example class: student -> (notebook, the total it must score). Real catalogue notebooks,
# one per kind of outcome; the totals are the catalogue's (tests/submissions/expected.json; a test compares).
EXAMPLE_CLASS = {
    "ada": ("tests/submissions/correct/correct_solution_as_released_success_score_full.ipynb", 10.0),
    "ben": ("tests/submissions/bugs/bug_no_padding_score_partial.ipynb", 7.0),
    "cy": ("tests/submissions/hostile/hostile_zeros_of_the_right_shape_score_zero_for_blocks.ipynb", 4.0),
    "dee": ("tests/submissions/correct/correct_identity_module_shortcut_success_score_full.ipynb", 10.0),
    "eve": ("release/notebook10/notebook10.ipynb", 0.0),
}

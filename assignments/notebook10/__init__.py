"""Notebook 10 (residual blocks, ResNet18 for PneumoniaMNIST): its plug-in (see autograder/plugins.py).

The instructor's notebook is source/notebook10/notebook10.ipynb. Here: the hidden graders
(graders/, one module per graded item), the messages they and the notebook's self-checks share
(graders/messages.py) and the reference computations they compare with (reference.py).
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

"""Notebook 11 (segmentation with U-Net, synthetic shapes): its plug-in (see autograder/plugins.py).

The instructor's notebook is source/notebook11/notebook11.ipynb. Here: the hidden graders
(graders/, one module per graded item), the sandbox-side probes and the seeded contract both sides
share (probes.py, seeded.py: SANDBOX), the reference computations the graders compare with
(reference.py, over unet_reference.py) and the notebook's data generator (shapes.py).
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

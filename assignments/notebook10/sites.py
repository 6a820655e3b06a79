"""Notebook 10's blank sites, for the report: what each blank hides, and the checks and messages
that tell a student's answer there right or wrong (autograder/report.py explains the fields)."""

from autograder.report import Site

MAIN_PATH = (r"^test_residual_block_shapes_main_path\[",)
WIRING = (r"^test_shortcut_projection_added_before_relu\[",)

SITES: list[Site] = [
    Site("setup", ("functional",), "import torch.nn.functional as F",
         untold="left blank, the import stops the setup cell (an error, which tells nothing by itself); a setup "
                "cell that runs shows only that some torch.nn module was imported as F, and a block that "
                "runs may call torch.relu instead of F.relu"),
    Site("residual_block", ("3", "stride", "1"), "conv1: kernel_size, stride, padding",
         checks=MAIN_PATH,
         wrong=(r"conv1 must be a 3x3 convolution", r"conv1 must apply the block's stride", r"conv1 needs padding=1"),
         right=(r"conv1 must have no bias",),
         evidence="the main-path checks; their conv1 kernel/stride/padding messages"),
    Site("residual_block", ("out_channels",), "bn1 = BatchNorm2d(out_channels)",
         checks=MAIN_PATH, wrong=(r"bn1 must normalise",),
         evidence='the main-path checks; "bn1 must normalise ..."'),
    Site("residual_block", ("out_channels", "out_channels"), "conv2: in and out channels",
         checks=MAIN_PATH, wrong=(r"conv2 must go from out_channels to out_channels",),
         evidence='the main-path checks; "conv2 must go from out_channels to out_channels"'),
    Site("residual_block", ("1",), "projection kernel_size=1",
         checks=(r"^test_shortcut_projection_conv_bn\[",),
         wrong=(r"the projection must be a 1x1 convolution",),
         right=(r"the projection convolution must use the block's stride",
                r"the projection convolution must have no bias",
                r"the projection convolution must be followed by BatchNorm2d",
                r"the shortcut does not compute BatchNorm\(1x1 convolution\(x\)\)"),
         evidence='the projection checks; "the projection must be a 1x1 convolution" (the later projection '
                  "messages are only reached with a 1x1 kernel)"),
    Site("residual_block", ("shortcut",), "out += self.shortcut(x)",
         checks=WIRING, wrong=(r"shortcut's output is never added to the main path",),
         right=(r"must end with a ReLU applied after the addition", r"the ReLU is applied before the addition"),
         judged_if=MAIN_PATH,
         evidence='the wiring checks; "the shortcut\'s output is never added" (a pass counts only with the main '
                  'path right: a block that cannot run because of its main path is not charged for its wiring)'),
    Site("residual_block", ("relu",), "the final F.relu(out)",
         checks=WIRING, wrong=(r"must end with a ReLU applied after the addition", r"the ReLU is applied before the addition"),
         judged_if=MAIN_PATH,
         evidence='the wiring checks; "must end with a ReLU" / "the ReLU is applied before the addition" (a pass '
                  'counts only with the main path right)'),
    Site("residual_block_demo", ("2",), "block_change_dim stride=2",
         checks=(r"^test_residual_block_shapes_seed_outputs\[output_tensor_2\]",),
         wrong=(r"block_change_dim needs the stride that halves",),
         needs_passed=(r"^test_residual_block_shapes_seed_cases\[changed\]",),
         evidence="the output_tensor_2 check; its stride message counts only when the block itself gives the "
                  "right shape at stride 2 (seed case 'changed' passed)"),
    Site("residual_block_demo", ("output_tensor_2.shape",), "print(output_tensor_2.shape)",
         checks=(r"^test_residual_block_shapes_seed_outputs\[output_tensor_2\]",),
         wrong=(r"must print output_tensor_2\.shape",),
         evidence="the output_tensor_2 check, which reads the demo's code: \"must print output_tensor_2.shape\" "
                  "(a wrong shape tells nothing about the print)"),
    Site("resnet18_adaptation", ("1",), "ResNet conv1: 1 input channel",
         checks=(r"^test_resnet18_adaptation_conv1$",),
         wrong=(r"resnet_model\.conv1 takes \d+ input channels",),
         right=(r"apart from its input channels, conv1 must stay",),
         evidence='the conv1 check; "resnet_model.conv1 takes N input channels"'),
    Site("resnet18_adaptation", ("2",), "fc: 2 outputs",
         checks=(r"^test_resnet18_adaptation_fc$",),
         wrong=(r"fc still has ImageNet's 1000 outputs", r"resnet_model\.fc gives \d+ outputs?; PneumoniaMNIST"),
         right=(r"resnet_model\.fc must take the 512 features",),
         evidence="the fc check; its output-count messages"),
    Site("resnet18_adaptation", ("4",), "DataLoader batch_size=4",
         checks=(r"^test_resnet18_adaptation_output_shape$",),
         wrong=(r"^images has the shape \((?!4,)\d+",),
         right=(r"^output has the shape", r"^output is not defined"),
         evidence="the batch/output shape check; an images shape whose batch is not 4 (an output message "
                  "means the images shape was right)"),
    Site("resnet18_adaptation", ("device",), "images = images.to(device)",
         checks=(r"^test_device_placement_batches\[",),
         wrong=(r"the batch of images is on [^,]+, not on device \((?!\?)",),
         evidence='the device batch checks, both worlds; "the batch of images is on ..., not on device"'),
]

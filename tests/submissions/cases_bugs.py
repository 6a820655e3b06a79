"""Real mistakes: each loses exactly the points of what it breaks."""

from tests.submissions.case import Case, Sub

CONV1 = "kernel_size=3, stride=stride, padding=1, bias=False)"
CONV2 = "self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)"
SHORTCUT_CONV = "nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),"
PROJECTION_IF = "if stride != 1 or in_channels != out_channels:"
DEVICE = 'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")'

# Item scores are rounded to 4 decimals by the engine (Result.item_scores), so thirds and sixths are
# written rounded: 2.6667 is 2 + 2/3.
CASES = [
    Case("bugs", "bug_no_padding_score_partial",
         (Sub("residual_block", "kernel_size=3, stride=stride, padding=1, bias=False)",
              "kernel_size=3, stride=stride, padding=0, bias=False)"),),
         expect={"residual_block_shapes": 0.0},
         why="conv1 without padding: the main path shrinks, the addition fails, the shapes are all wrong"),

    # --- the main path (a main-path mistake is the shapes item's: the shortcut is judged on its own layers,
    # and the join is not charged where the main path cannot be added to anything) ---
    Case("bugs", "bug_conv1_ignores_stride_score_partial",
         (Sub("residual_block", CONV1, "kernel_size=3, stride=1, padding=1, bias=False)"),),
         expect={"residual_block_shapes": 1.5556},
         why="conv1 always at stride 1: stride-2 blocks keep the full size on the main path and cannot add the "
             "projected x (stride-1 blocks are right)"),
    Case("bugs", "bug_conv2_uses_block_stride_score_partial",
         (Sub("residual_block", CONV2, CONV2.replace("stride=1", "stride=stride")),),
         expect={"residual_block_shapes": 1.5556},
         why="conv2 also applies the block's stride, so a stride-2 main path shrinks twice and cannot meet the shortcut"),
    Case("bugs", "bug_bn1_on_in_channels_score_partial",
         (Sub("residual_block", "self.bn1 = nn.BatchNorm2d(out_channels)", "self.bn1 = nn.BatchNorm2d(in_channels)"),),
         expect={"residual_block_shapes": 1.5556},
         why="bn1 sized for in_channels: every block that changes the channel count raises in bn1"),
    Case("bugs", "bug_conv2_from_in_channels_score_partial",
         (Sub("residual_block", CONV2, CONV2.replace("nn.Conv2d(out_channels, out_channels", "nn.Conv2d(in_channels, out_channels")),),
         expect={"residual_block_shapes": 1.5556},
         why="conv2 takes in_channels inputs: every block that changes the channel count raises in conv2"),

    # --- the shortcut and how it meets the main path ---
    Case("bugs", "bug_shortcut_conv_3x3_score_partial",
         (Sub("residual_block", SHORTCUT_CONV, SHORTCUT_CONV.replace("kernel_size=1", "kernel_size=3")),),
         expect={"residual_block_shapes": 1.7222, "shortcut_projection": 1.5},
         why="a 3x3 projection without padding: it is not the 1x1 projection, and its output is too small to add, "
             "so every projecting block raises (shapes: the seed case, output_tensor_2, seven hidden; the main path "
             "is right and not charged)"),
    Case("bugs", "bug_shortcut_conv_3x3_padded_score_partial",
         (Sub("residual_block", SHORTCUT_CONV, SHORTCUT_CONV.replace("kernel_size=1", "kernel_size=3, padding=1")),),
         expect={"shortcut_projection": 2.0},
         why="a 3x3 projection with padding 1: the shapes work, but the shortcut is not the 1x1 projection"),
    Case("bugs", "bug_no_residual_add_score_partial",
         (Sub("residual_block", "        out += self.shortcut(x)\n", ""),),
         expect={"shortcut_projection": 2.0},
         why="the shortcut is built but never added: the block is a plain two-convolution stack"),
    Case("bugs", "bug_relu_before_add_score_partial",
         (Sub("residual_block", "out = self.bn2(self.conv2(out))", "out = F.relu(self.bn2(self.conv2(out)))"),
          Sub("residual_block", "        out = F.relu(out)\n        return out", "        return out")),
         expect={"shortcut_projection": 2.0},
         why="the second ReLU applied to the main path before the addition instead of after it"),
    Case("bugs", "bug_no_final_relu_score_partial",
         (Sub("residual_block", "        out = F.relu(out)\n        return out", "        return out"),),
         expect={"shortcut_projection": 2.0},
         why="no ReLU after the addition: the block returns main(x) + shortcut(x)"),
    Case("bugs", "bug_projection_only_when_stride_changes_score_partial",
         (Sub("residual_block", PROJECTION_IF, "if stride != 1:"),),
         expect={"residual_block_shapes": 2.6667, "shortcut_projection": 2.6667},
         why="a projection only when the stride changes: blocks that change only the channels add x of the wrong "
             "channel count and raise"),
    Case("bugs", "bug_projection_only_when_channels_change_score_partial",
         (Sub("residual_block", PROJECTION_IF, "if in_channels != out_channels:"),),
         expect={"residual_block_shapes": 2.6667, "shortcut_projection": 2.6667},
         why="a projection only when the channels change: stride-2 blocks with equal channels add a full-size x "
             "and raise"),
    Case("bugs", "bug_projection_without_batchnorm_score_partial",
         (Sub("residual_block", SHORTCUT_CONV + "\n                nn.BatchNorm2d(out_channels)\n",
              SHORTCUT_CONV + "\n"),),
         expect={"shortcut_projection": 2.0},
         why="the projection is a bare 1x1 convolution with no BatchNorm after it"),
    Case("bugs", "bug_shortcut_conv_stride_1_score_partial",
         (Sub("residual_block", SHORTCUT_CONV, SHORTCUT_CONV.replace("stride=stride", "stride=1")),),
         expect={"residual_block_shapes": 2.0556, "shortcut_projection": 1.8333},
         why="the projection convolution always at stride 1: stride-2 blocks add a full-size x and raise (shapes: "
             "the seed case, output_tensor_2, four hidden; the main path is right and not charged)"),

    # --- ResNet18 ---
    Case("bugs", "bug_fc_one_output_score_partial",
         (Sub("resnet18_adaptation", "nn.Linear(num_ftrs, 2)", "nn.Linear(num_ftrs, 1)"),),
         expect={"resnet18_adaptation": 1.0},
         why="fc with a single output for a 2-class problem: fc and the output shape are wrong"),
    Case("bugs", "bug_conv1_three_channels_score_partial",
         (Sub("resnet18_adaptation", "nn.Conv2d(1, 64, kernel_size=7", "nn.Conv2d(3, 64, kernel_size=7"),),
         expect={"resnet18_adaptation": 1.0},
         why="conv1 replaced by another 3-channel convolution: the 1-channel batch cannot go through, so there is no "
             "output (its shape is charged; its device is not, model and batch being on device: a ResNet mistake "
             "is the ResNet item's)"),
    Case("bugs", "bug_fc_not_replaced_score_partial",
         (Sub("resnet18_adaptation", "num_ftrs = resnet_model.fc.in_features\nresnet_model.fc = nn.Linear(num_ftrs, 2)\n",
              ""),),
         expect={"resnet18_adaptation": 1.0},
         why="fc left as ImageNet's 1000-class layer: fc and the output shape are wrong"),

    # --- the device ---
    Case("bugs", "bug_batch_not_moved_to_device_score_partial",
         (Sub("resnet18_adaptation", "images = images.to(device)\n", ""),),
         expect={"device_placement": 1.5},
         why="the batch stays on the CPU: with a GPU it is not on the device and the model cannot take it"),
    Case("bugs", "bug_model_not_moved_to_device_score_partial",
         (Sub("resnet18_adaptation", "resnet_model.to(device)\n", ""),),
         expect={"device_placement": 1.5},
         why="the model stays on the CPU: with a GPU it is not on the device and cannot take the batch"),
    Case("bugs", "bug_model_moved_before_layers_replaced_score_partial",
         (Sub("resnet18_adaptation", "resnet_model.to(device)\n", ""),
          Sub("resnet18_adaptation", "resnet_model = torchvision.models.resnet18(weights=None)\n",
              "resnet_model = torchvision.models.resnet18(weights=None)\nresnet_model.to(device)\n")),
         expect={"device_placement": 1.5},
         why="the model is moved before conv1 and fc are replaced, so with a GPU the new layers stay on the CPU"),
    Case("bugs", "bug_setup_functional_typo_score_partial",
         (Sub("setup", "import torch.nn.functional as F", "import torch.nn.Functional as F"),),
         expect={"residual_block_shapes": 0, "shortcut_projection": 2, "resnet18_adaptation": 0, "device_placement": 0},
         why="one typo in the setup's imports stops the setup cell there: torchvision, the data and device are "
             "never defined, F neither, so every later cell fails; the shortcut's layers still check out, its join "
             "(F.relu) does not. The feedback names that one line as the cause"),
    Case("bugs", "bug_numpy_of_batch_on_device_score_partial",
         (Sub("resnet18_adaptation", "images = images.to(device)\n",
              "images = images.to(device)\nprint(\"Mean pixel:\", images.numpy().mean())\n"),),
         expect={"device_placement": 1.75},
         why=".numpy() on the batch once it is on device: a GPU tensor must come back with .cpu() first, so with a "
             "GPU the cell stops before the output (unlike .item(), which a GPU answers)"),
    Case("bugs", "bug_device_second_gpu_number_score_partial",
         (Sub("setup", DEVICE, 'device = 1 if torch.cuda.is_available() else "cpu"'),),
         expect={"device_placement": 1.0},
         why="device as the number of a second GPU, which a one-GPU machine does not have"),
    Case("bugs", "bug_device_hardcoded_cpu_score_partial",
         (Sub("setup", DEVICE, 'device = torch.device("cpu")'),),
         expect={"device_placement": 1.75},
         why="device hard-coded to the CPU: wrong only where there is a GPU"),
    Case("bugs", "bug_device_hardcoded_cuda_score_partial",
         (Sub("setup", DEVICE, 'device = torch.device("cuda")'),),
         expect={"device_placement": 1.0},
         why="device hard-coded to the GPU: on this GPU-less machine every .to(device) raises, so the demo "
             "outputs, the batch and the model's output are never made here; charged in the device item only (the "
             "four checks on this machine): the shapes and the ResNet numbers are read in the world with a GPU"),
    # found by the red team of the self-checks (issue 12)
    Case("bugs", "bug_residual_block_syntax_error_score_partial",
         (Sub("residual_block", "kernel_size=3, stride=stride, padding=1, bias=False)",
              "kernel_size=3 stride=stride, padding=1, bias=False)"),),
         expect={"residual_block_shapes": 0, "shortcut_projection": 0},
         why="a missing comma: the exercise cell is a SyntaxError, so ResidualBlock is never defined"),
    Case("bugs", "bug_forward_returns_none_score_partial",
         (Sub("residual_block", "        out = F.relu(out)\n        return out", "        out = F.relu(out)"),),
         expect={"residual_block_shapes": 0, "shortcut_projection": 2},
         why="forward never returns its output: the shortcut's layers, seen as forward calls them, are right; "
             "its join cannot be seen"),
    Case("bugs", "bug_resnet_model_made_a_tuple_score_partial",
         (Sub("resnet18_adaptation", "resnet_model.to(device)\n", "resnet_model = resnet_model.to(device),\n"),),
         expect={"resnet18_adaptation": 0, "device_placement": 1},
         why="a trailing comma makes resnet_model a tuple: no model to inspect or place, the batch is placed"),

]

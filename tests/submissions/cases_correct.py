"""Correct submissions written in other reasonable ways: every one must get full marks."""

from tests.submissions.case import Case, InsertAfter, Replace, Sub

TWO_ATTRIBUTE_PROJECTION_BLOCK = '''class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

        self.project = stride != 1 or in_channels != out_channels
        if self.project:
            self.proj_conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)
            self.proj_bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = self.proj_bn(self.proj_conv(x)) if self.project else x
        return F.relu(out + skip)
'''

DOWNSAMPLE_NONE_BLOCK = '''class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super(ResidualBlock, self).__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = F.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return F.relu(out)
'''

CASES = [
    Case("correct", "correct_solution_as_released_success_score_full", (),
         why="the blanks filled exactly as in the solution"),
    Case("correct", "correct_identity_module_shortcut_success_score_full",
         (Sub("residual_block", "self.shortcut = nn.Sequential()\n", "self.shortcut = nn.Identity()\n"),),
         why="nn.Identity() instead of an empty nn.Sequential as the identity shortcut"),
    Case("correct", "correct_shortcut_named_skip_success_score_full",
         (Sub("residual_block", "self.shortcut", "self.skip"),),
         why="the shortcut attribute is called self.skip, in __init__ and in forward alike"),
    Case("correct", "correct_out_plus_shortcut_not_inplace_success_score_full",
         (Sub("residual_block", "out += self.shortcut(x)", "out = out + self.shortcut(x)"),),
         why="the addition written out = out + self.shortcut(x) instead of +="),
    Case("correct", "correct_relu_modules_success_score_full",
         (Sub("residual_block", "        self.bn2 = nn.BatchNorm2d(out_channels)\n",
              "        self.bn2 = nn.BatchNorm2d(out_channels)\n        self.relu = nn.ReLU(inplace=True)\n"),
          Sub("residual_block", "out = F.relu(self.bn1(self.conv1(x)))", "out = self.relu(self.bn1(self.conv1(x)))"),
          Sub("residual_block", "out = F.relu(out)", "out = self.relu(out)")),
         why="an nn.ReLU(inplace=True) module, torchvision style, instead of F.relu"),
    Case("correct", "correct_torch_relu_success_score_full",
         (Sub("residual_block", "F.relu(", "torch.relu("),),
         why="torch.relu instead of F.relu, both before conv2 and after the addition"),
    Case("correct", "correct_tuple_kernel_sizes_success_score_full",
         (Sub("residual_block", "kernel_size=3, stride=stride, padding=1",
              "kernel_size=(3, 3), stride=(stride, stride), padding=(1, 1)"),
          Sub("residual_block", "kernel_size=3, stride=1, padding=1", "kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)"),
          Sub("residual_block", "kernel_size=1, stride=stride", "kernel_size=(1, 1), stride=(stride, stride)")),
         why="kernel sizes, strides and paddings written as tuples, e.g. kernel_size=(3, 3)"),
    Case("correct", "correct_same_padding_on_conv2_success_score_full",
         (Sub("residual_block", "kernel_size=3, stride=1, padding=1", "kernel_size=3, stride=1, padding='same'"),),
         why="padding='same' on the stride-1 conv2, which for a 3x3 kernel is padding 1"),
    Case("correct", "correct_super_without_arguments_success_score_full",
         (Sub("residual_block", "super(ResidualBlock, self).__init__()", "super().__init__()"),),
         why="Python 3's super().__init__() instead of super(ResidualBlock, self).__init__()"),
    Case("correct", "correct_projection_as_two_attributes_success_score_full",
         (Replace("residual_block", TWO_ATTRIBUTE_PROJECTION_BLOCK),),
         why="the projection kept as two attributes (proj_conv, proj_bn) made only when needed, x used as is otherwise"),
    Case("correct", "correct_torchvision_style_downsample_success_score_full",
         (Replace("residual_block", DOWNSAMPLE_NONE_BLOCK),),
         why="torchvision's BasicBlock style: identity = x, a downsample that is None unless the shape changes"),
    Case("correct", "correct_resnet18_built_with_two_classes_success_score_full",
         (Sub("resnet18_adaptation", "resnet18(weights=None)", "resnet18(weights=None, num_classes=2)"),
          Sub("resnet18_adaptation", "num_ftrs = resnet_model.fc.in_features\nresnet_model.fc = nn.Linear(num_ftrs, 2)\n",
              "")),
         why="torchvision.models.resnet18(num_classes=2) builds the 2-class fc, so only conv1 is replaced"),
    Case("correct", "correct_fc_with_literal_512_success_score_full",
         (Sub("resnet18_adaptation", "resnet_model.fc = nn.Linear(num_ftrs, 2)", "resnet_model.fc = nn.Linear(512, 2)"),),
         why="the new fc written nn.Linear(512, 2) instead of reading fc.in_features"),
    Case("correct", "correct_device_as_string_success_score_full",
         (Sub("setup", 'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")',
              'device = "cuda" if torch.cuda.is_available() else "cpu"'),),
         why="device kept as the string 'cuda' or 'cpu' rather than a torch.device"),
    Case("correct", "correct_device_cuda_zero_success_score_full",
         (Sub("setup", 'torch.device("cuda" if', 'torch.device("cuda:0" if'),),
         why="the GPU named with its index, torch.device('cuda:0'), when there is one"),
    Case("correct", "correct_assigned_to_device_variants_success_score_full",
         (Sub("residual_block_demo", "input_tensor_1 = torch.randn(4, 64, 32, 32).to(device)",
              "input_tensor_1 = torch.randn(4, 64, 32, 32, device=device)"),
          Sub("resnet18_adaptation", "resnet_model.to(device)", "resnet_model = resnet_model.to(device)"),
          Sub("resnet18_adaptation", "images = images.to(device)", "images = images.to(device=device)")),
         why="resnet_model = resnet_model.to(device), images.to(device=device) and torch.randn(..., device=device)"),
    Case("correct", "correct_dataloader_in_steps_success_score_full",
         (Sub("resnet18_adaptation",
              "images, _ = next(iter(DataLoader(PneumoniaMNIST(split='val', transform=transforms.ToTensor(), "
              "download=True), batch_size=4)))",
              "val_dataset = PneumoniaMNIST(split='val', transform=transforms.ToTensor(), download=True)\n"
              "val_loader = DataLoader(val_dataset, batch_size=4, shuffle=True)\n"
              "images, labels = next(iter(val_loader))"),),
         why="the dataset and a shuffling DataLoader kept in variables, and the labels kept too"),
    Case("correct", "correct_pip_install_left_in_setup_success_score_full",
         (Sub("setup", "# Colab: medmnist", "!pip install medmnist\n# Colab: medmnist"),),
         why="a leftover `!pip install medmnist` line at the top of the setup cell (the grader does not run it)"),
    Case("correct", "correct_extra_cell_printing_the_model_success_score_full",
         (InsertAfter("resnet18_adaptation",
                      "print(resnet_model)\n"
                      "print(sum(p.numel() for p in resnet_model.parameters()), 'parameters')\n"
                      "print(torch.softmax(output, dim=1))"),),
         why="an extra cell that prints the model, its parameter count and the softmax of the output"),
    Case("correct", "correct_extra_cell_plotting_success_score_full",
         (InsertAfter("resnet18_adaptation",
                      "fig, axes = plt.subplots(1, 4, figsize=(8, 2))\n"
                      "for ax, image in zip(axes, images.cpu()):\n"
                      "    ax.imshow(image[0], cmap='gray')\n"
                      "    ax.axis('off')\n"
                      "plt.show()"),
          InsertAfter("residual_block_demo",
                      "plt.imshow(output_tensor_2[0, 0].detach().cpu().numpy())\n"
                      "plt.colorbar()\n"
                      "plt.show()")),
         why="extra cells that plot the batch and a feature map (the sort that fails only on a simulated GPU)"),
    # found by the red team of the self-checks (issue 12): each made a visible self-check crash or fail
    Case("correct", "correct_lazy_conv1_success_score_full",
         (Sub("residual_block", "self.conv1 = nn.Conv2d(in_channels, out_channels,\n"
              "                               kernel_size=3, stride=stride, padding=1, bias=False)",
              "self.conv1 = nn.LazyConv2d(out_channels, kernel_size=3, stride=stride, padding=1, bias=False)"),),
         why="conv1 as a LazyConv2d: its weights exist only after the first forward"),
    Case("correct", "correct_own_function_named_like_a_helper_success_score_full",
         (InsertAfter("residual_block", "def describe_layer(m):\n    print(m)\n"),),
         why="a cell of the student's own defines a function with the name of one of the self-checks' helpers"),
    Case("correct", "correct_device_read_back_from_the_model_success_score_full",
         (Sub("resnet18_adaptation", 'print(f"Output shape: {output.shape}")',
              'print(f"Output shape: {output.shape}")\ndevice = next(resnet_model.parameters()).device'),),
         why="device set again from the model's parameters after the setup chose it"),

    Case("correct", "correct_item_read_before_output_success_score_full",
         (Sub("resnet18_adaptation", "images = images.to(device)\n",
              "images = images.to(device)\n"
              "print(f\"Pixel range: {images.min().item():.2f} to {images.max().item():.2f}\")\n"),),
         why="reads a number out of the batch on device before the forward (.item() works on a GPU; the "
             "simulated GPU holds no data)"),
    Case("correct", "correct_boolean_mask_before_output_success_score_full",
         (Sub("resnet18_adaptation", "images = images.to(device)\n",
              "images = images.to(device)\nprint(\"Bright pixels:\", images[images > 0.9].numel())\n"),),
         why="a boolean mask on the batch on device before the forward (its size depends on the data)"),
    Case("correct", "correct_device_as_an_integer_success_score_full",
         (Sub("setup", 'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")',
              'device = 0 if torch.cuda.is_available() else "cpu"'),),
         why="device given as the GPU's number, which .to() reads as cuda:0"),
]

"""Accuracy cases (the accuracy issue): does each item score what a fair teacher would give?

Test-first: these cases state the fair per-item scores; ACCURACY.md records what the current
grader gives them (`python -m tests.submissions.accuracy_report` measures and rewrites it).

Three questions, one list:

* **Correct notebooks written in ordinary ways** (group "correct") must get 10/10 and must not
  be marked for review: other spellings of the device choice, DataLoader workers, CUDA queries,
  torch.compile, pin_memory, matplotlib backends and magics, tqdm, extra module attributes, the
  scaffold's layers wrapped in a Sequential, demo blocks in eval mode.
* **Real mistakes** (group "bugs") must lose points, in the item the mistake belongs to.
* **Each mistake is charged in its own item**, by this policy (the one the expectations below
  follow; where a case's fair score is unclear its `why` says so):
  - `residual_block_shapes` owns the main path (conv1 -> bn1 -> ReLU -> conv2 -> bn2, as the
    block's *forward* computes it: its layers, their literals and their order) and the output
    shapes. A shape is a shape: any mistake that leaves a block with no output of the right
    shape (the block raises) costs the shape checks of the configurations it breaks, whatever
    part is wrong. So a main-path mistake in one literal can cost the whole shapes item.
  - `shortcut_projection` owns the shortcut (identity or 1x1 convolution with the block's
    stride and BatchNorm, and when it projects) and how it joins the main path (added, before
    the final ReLU, with gradients flowing through both paths). A main-path mistake never
    costs shortcut points, not even when it makes the addition impossible: the join is judged
    on the student's own two paths where they can be added, and is not charged otherwise.
  - `resnet18_adaptation` owns conv1, fc, the untouched rest and the batch/output shapes;
    `device_placement` owns `device` and where the demo's and the ResNet's tensors are. A
    mistake of one never costs points in the other: an output that does not exist because of
    a ResNet or data mistake is not a device failure, and an output that does not exist
    because of a device mistake is not a ResNet failure.
  - Weights for checks that do not exist yet (for example a hidden configuration with fewer
    output than input channels) follow the item's current weights: a hidden shape case is
    1/6, a kind of projection 1/3, a join check 0.5, a device check 0.25, a seed output 0.25.

MESSAGES states, for some cases, what the failing checks' messages must (and must not) say;
the accuracy report checks it. It is not used by tests/test_submissions.py.
"""

from __future__ import annotations

import nbformat

from autograder.blanks import strip_markers
from autograder.course import COURSE
from assignments.notebook10 import NOTEBOOK
from tests.submissions.case import Case, InsertAfter, Replace, Sub

DEVICE = 'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")'
CONV1 = "kernel_size=3, stride=stride, padding=1, bias=False)"
CONV2 = "self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)"
BN1 = "self.bn1 = nn.BatchNorm2d(out_channels)"
BN2_LINE = "        self.bn2 = nn.BatchNorm2d(out_channels)\n"
SHORTCUT_CONV = "nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),"
SHORTCUT_BN = "                nn.BatchNorm2d(out_channels)\n            )"
PROJECTION_IF = "if stride != 1 or in_channels != out_channels:"
FIRST = "out = F.relu(self.bn1(self.conv1(x)))"
SECOND = "out = self.bn2(self.conv2(out))"
MAIN_PATH = f"        {FIRST}\n        {SECOND}\n"
ADD = "        out += self.shortcut(x)\n"
FINAL = "        out = F.relu(out)\n"
PRINT_2 = 'print(f"Output shape (changed dim): {output_tensor_2.shape}")'
LOADER = ("images, _ = next(iter(DataLoader(PneumoniaMNIST(split='val', transform=transforms.ToTensor(), "
          "download=True), batch_size=4)))")
MODEL_TO = "resnet_model.to(device)\n"
BATCH_TO = "images = images.to(device)\n"
FORWARD = "output = resnet_model(images)\n"
FC = "resnet_model.fc = nn.Linear(num_ftrs, 2)"
RESNET_CONV1 = "resnet_model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)"
ITEMS = ("residual_block_shapes", "shortcut_projection", "resnet18_adaptation", "device_placement")
NINTH, THIRD = 1 / 9, 1 / 3  # a hidden shape case; a projection kind


def _solution(grade_id: str) -> str:
    """The solution cell as a correct student submits it (marker comments removed)."""
    for cell in nbformat.read(COURSE.source() / NOTEBOOK, as_version=4).cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return strip_markers(cell.source)
    raise KeyError(grade_id)


def _r(value: float) -> float:
    """Item scores as the engine rounds them (4 decimals)."""
    return round(value, 4)


BLOCK = _solution("residual_block")

MAIN_PATH_AS_ONE_SEQUENTIAL = '''class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        # F(x): conv -> BN -> ReLU -> conv -> BN, as one module
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        return F.relu(self.residual(x) + self.shortcut(x))
'''

SHORTCUT_BEFORE_SEQUENTIAL_MAIN_PATH = '''class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x):
        return F.relu(self.residual(x) + self.shortcut(x))
'''

ALWAYS_PROJECTS = BLOCK.replace(
    "        self.shortcut = nn.Sequential()\n        if stride != 1 or in_channels != out_channels:\n", "").replace(
    "            # x and F(x)", "        # x and F(x)").replace(
    "            # the block's stride", "        # the block's stride").replace(
    "            # TODO: the kernel size", "        # TODO: the kernel size").replace(
    "            self.shortcut = nn.Sequential(\n                nn.Conv2d",
    "        self.shortcut = nn.Sequential(\n            nn.Conv2d").replace(
    "                nn.BatchNorm2d(out_channels)\n            )", "            nn.BatchNorm2d(out_channels)\n        )")
assert ALWAYS_PROJECTS != BLOCK and "if stride" not in ALWAYS_PROJECTS

CORRECT = [
    # --- the device, and CUDA queries the sandbox must answer like PyTorch ---
    Case("correct", "correct_device_from_device_count_success_score_full",
         (Sub("setup", DEVICE, 'device = torch.device("cuda" if torch.cuda.device_count() > 0 else "cpu")'),),
         why="device chosen with torch.cuda.device_count() > 0, the other common way to ask for a GPU (on a machine "
             "with a GPU, the world with CUDA hidden must hide it from this question too)"),
    Case("correct", "correct_device_index_from_current_device_success_score_full",
         (Sub("setup", DEVICE,
              'device = torch.device(f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu")'),),
         why="the GPU named by torch.cuda.current_device(), e.g. cuda:0"),
    Case("correct", "correct_device_with_mps_fallback_success_score_full",
         (Sub("setup", DEVICE,
              'device = torch.device("cuda" if torch.cuda.is_available()\n'
              '                      else "mps" if torch.backends.mps.is_available() else "cpu")'),),
         why="CUDA, else Apple's MPS, else the CPU: written on a Mac, and the same answer on the grader's machines"),
    Case("correct", "correct_cuda_queries_in_setup_success_score_full",
         (Sub("setup", 'print(f"Using device: {device}")',
              'print(f"Using device: {device}")\n'
              'print("CUDA available:", torch.cuda.is_available(), "| GPUs:", torch.cuda.device_count(),\n'
              '      "| CUDA build:", torch.version.cuda)\n'
              'if torch.cuda.is_available():\n'
              '    print("GPU:", torch.cuda.get_device_name(0))\n'
              '    torch.cuda.manual_seed_all(42)\n'
              '    torch.backends.cudnn.benchmark = True'),),
         why="the setup prints what CUDA reports (availability, count, build, the GPU's name) and seeds the GPU"),
    Case("correct", "correct_cuda_memory_report_success_score_full",
         (Sub("resnet18_adaptation", MODEL_TO,
              MODEL_TO + "if torch.cuda.is_available():\n"
              "    props = torch.cuda.get_device_properties(0)\n"
              "    print(f\"{props.name}: {torch.cuda.memory_allocated(device) / 1e6:.1f} MB of \"\n"
              "          f\"{props.total_memory / 1e9:.0f} GB in use\")\n"
              "    torch.cuda.empty_cache()\n"),
          Sub("resnet18_adaptation", FORWARD,
              FORWARD + "if torch.cuda.is_available():\n    torch.cuda.synchronize()\n")),
         why="when there is a GPU, the model's memory is reported, the cache emptied, and the forward pass "
             "synchronised (what a student timing the GPU writes)"),

    # --- the data loader ---
    Case("correct", "correct_dataloader_num_workers_success_score_full",
         (Sub("resnet18_adaptation", "batch_size=4)))", "batch_size=4, num_workers=2)))"),),
         why="DataLoader(..., batch_size=4, num_workers=2): two worker processes load the batch"),
    Case("correct", "correct_pin_memory_when_cuda_success_score_full",
         (Sub("resnet18_adaptation", "batch_size=4)))", "batch_size=4, pin_memory=torch.cuda.is_available())))"),
          Sub("resnet18_adaptation", BATCH_TO, "images = images.to(device, non_blocking=True)\n")),
         why="pinned memory when there is a GPU and a non-blocking copy, as PyTorch's performance guide advises"),
    Case("correct", "correct_pin_memory_always_success_score_full",
         (Sub("resnet18_adaptation", "batch_size=4)))", "batch_size=4, pin_memory=True)))"),),
         why="DataLoader(..., pin_memory=True) as tutorials write it (on a machine without a GPU PyTorch only warns)"),
    Case("correct", "correct_tqdm_progress_bar_success_score_full",
         (Sub("resnet18_adaptation", LOADER,
              "from tqdm.auto import tqdm\n"
              "val_loader = DataLoader(PneumoniaMNIST(split='val', transform=transforms.ToTensor(), download=True), "
              "batch_size=4)\n"
              "for images, labels in tqdm(val_loader, desc='validation batches'):\n"
              "    break  # one batch is enough here"),),
         why="the batch taken from a loop wrapped in a tqdm progress bar (tqdm starts a monitor thread of its own)"),
    Case("correct", "correct_batch_from_for_loop_success_score_full",
         (Sub("resnet18_adaptation", LOADER,
              "val_loader = DataLoader(PneumoniaMNIST(split='val', transform=transforms.ToTensor(), download=True), "
              "batch_size=4)\n"
              "for images, labels in val_loader:\n"
              "    break"),),
         why="the first batch taken with a for loop and break instead of next(iter(...))"),
    Case("correct", "correct_normalize_transform_success_score_full",
         (Sub("resnet18_adaptation", "transform=transforms.ToTensor()",
              "transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean=[0.5], std=[0.5])])"),),
         why="the images normalised to [-1, 1] after ToTensor, as the medmnist examples do"),

    # --- plotting and notebook magics ---
    Case("correct", "correct_matplotlib_inline_magic_success_score_full",
         (Sub("setup", "import torch\n", "%matplotlib inline\nimport torch\n"),),
         why="`%matplotlib inline` at the top of the setup cell, as in countless notebooks"),
    Case("correct", "correct_inline_backend_retina_config_success_score_full",
         (Sub("setup", "import matplotlib.pyplot as plt\n",
              "import matplotlib.pyplot as plt\n%config InlineBackend.figure_format = 'retina'\n"),),
         why="`%config InlineBackend.figure_format = 'retina'` after importing pyplot, for sharper figures"),
    Case("correct", "correct_matplotlib_agg_backend_savefig_success_score_full",
         (Sub("setup", "import matplotlib.pyplot as plt\n",
              "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"),
          InsertAfter("resnet18_adaptation",
                      "fig, axes = plt.subplots(1, 4, figsize=(8, 2))\n"
                      "for ax, image in zip(axes, images.cpu()):\n"
                      "    ax.imshow(image[0], cmap='gray')\n"
                      "    ax.axis('off')\n"
                      "fig.savefig('first_batch.png', dpi=100)\n"
                      "plt.close(fig)")),
         why="the Agg backend chosen explicitly and the batch saved to a PNG file instead of shown"),

    # --- the residual block ---
    Case("correct", "correct_unused_pool_attribute_success_score_full",
         (Sub("residual_block", BN2_LINE, BN2_LINE + "        self.pool = nn.AvgPool2d(2)  # tried, not used in forward\n"),),
         why="an extra module attribute the forward never calls (self.pool = nn.AvgPool2d(2)): the block computes "
             "exactly the residual block"),
    Case("correct", "correct_scaffold_layers_wrapped_in_sequential_success_score_full",
         (Sub("residual_block", BN2_LINE,
              BN2_LINE + "        self.main = nn.Sequential(self.conv1, self.bn1, nn.ReLU(), self.conv2, self.bn2)\n"),
          Sub("residual_block", MAIN_PATH, "        out = self.main(x)\n")),
         why="the scaffold's conv1, bn1, conv2 and bn2 kept, and the main path also wrapped in self.main = "
             "nn.Sequential(self.conv1, ...), which forward calls"),
    Case("correct", "correct_main_path_as_one_sequential_success_score_full",
         (Replace("residual_block", MAIN_PATH_AS_ONE_SEQUENTIAL),),
         why="DECIDED: full marks. The main path written as one nn.Sequential named self.residual, without the "
             "scaffold's names conv1..bn2: it computes exactly conv-BN-ReLU-conv-BN plus the right shortcut, and "
             "nothing in the exercise's text asks for the names; a grader can find the layers by their role (the "
             "path that does not bypass) and should"),
    Case("correct", "correct_kaiming_init_zero_last_bn_success_score_full",
         (Sub("residual_block", "    def forward(self, x):\n",
              "        for m in self.modules():\n"
              "            if isinstance(m, nn.Conv2d):\n"
              "                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')\n"
              "        nn.init.zeros_(self.bn2.weight)  # zero_init_residual: the block starts as the identity\n"
              "\n    def forward(self, x):\n"),),
         why="He initialisation for the convolutions and bn2's weight zeroed (torchvision's zero_init_residual): "
             "a different start, the same block"),
    Case("correct", "correct_projection_condition_as_tuple_success_score_full",
         (Sub("residual_block", PROJECTION_IF, "if (stride, in_channels) != (1, out_channels):"),),
         why="the projection condition written (stride, in_channels) != (1, out_channels)"),
    Case("correct", "correct_forward_returns_relu_of_sum_success_score_full",
         (Sub("residual_block", ADD + "\n        # TODO: the final activation, applied after the addition\n" + FINAL
              + "        return out", "        return F.relu(out + self.shortcut(x))"),),
         why="forward ends with return F.relu(out + self.shortcut(x))"),

    # --- the demo cell ---
    Case("correct", "correct_demo_blocks_in_eval_mode_success_score_full",
         (Sub("residual_block_demo", "stride=1).to(device)", "stride=1).to(device).eval()"),
          Sub("residual_block_demo", "stride=2).to(device)", "stride=2).to(device).eval()")),
         why="the demo blocks put in eval mode, ResidualBlock(...).to(device).eval(), since they are only tried out "
             "(their outputs then use the running statistics; the shapes are the same)"),
    Case("correct", "correct_demo_under_no_grad_success_score_full",
         (Sub("residual_block_demo", "output_tensor_1 = block_same_dim(input_tensor_1)",
              "with torch.no_grad():\n    output_tensor_1 = block_same_dim(input_tensor_1)"),
          Sub("residual_block_demo", "output_tensor_2 = block_change_dim(input_tensor_2)",
              "with torch.no_grad():\n    output_tensor_2 = block_change_dim(input_tensor_2)")),
         why="the demo outputs computed under torch.no_grad()"),
    Case("correct", "correct_torch_compile_demo_block_success_score_full",
         (Sub("residual_block_demo", "block_same_dim = ResidualBlock(in_channels=64, out_channels=64, stride=1).to(device)",
              "block_same_dim = torch.compile(ResidualBlock(in_channels=64, out_channels=64, stride=1).to(device))"),),
         why="the first demo block compiled with torch.compile (PyTorch 2's one-line speed-up); the compiled module "
             "wraps the student's block (a compile takes several seconds on a CPU)"),
    Case("correct", "correct_torch_compile_model_success_score_full",
         (Sub("resnet18_adaptation", FORWARD, "compiled_model = torch.compile(resnet_model)\n"
              "output = compiled_model(images)\n"),),
         why="the ResNet's forward pass run through torch.compile(resnet_model); resnet_model itself is unchanged. "
             "UNCLEAR only in time: compiling ResNet18 took about 45 s on this 2-core machine (one thread), longer "
             "than a cell's limit; full marks presumes the grader's limits allow it"),

    # --- ResNet18 ---
    Case("correct", "correct_fc_as_sequential_of_one_linear_success_score_full",
         (Sub("resnet18_adaptation", FC, "resnet_model.fc = nn.Sequential(nn.Linear(num_ftrs, 2))"),),
         why="DECIDED: full marks. fc = nn.Sequential(nn.Linear(num_ftrs, 2)), a common transfer-learning spelling "
             "that computes exactly the 512 -> 2 layer"),
    Case("correct", "correct_batch_moved_inside_the_call_success_score_full",
         (Sub("resnet18_adaptation", BATCH_TO + FORWARD, "output = resnet_model(images.to(device))\n"),),
         why="DECIDED: full marks. output = resnet_model(images.to(device)): the batch the model receives is on the "
             "device (the output on the device proves it), only the name `images` still refers to the CPU copy"),
    Case("correct", "correct_model_eval_and_no_grad_inference_success_score_full",
         (Sub("resnet18_adaptation", FORWARD, "resnet_model.eval()\nwith torch.no_grad():\n"
              "    output = resnet_model(images)\n"),),
         why="the model put in eval mode and run under torch.no_grad(), as for any inference"),
    Case("correct", "correct_moved_with_cuda_method_success_score_full",
         (Sub("resnet18_adaptation", MODEL_TO, "if torch.cuda.is_available():\n    resnet_model = resnet_model.cuda()\n"),
          Sub("resnet18_adaptation", BATCH_TO, "if torch.cuda.is_available():\n    images = images.cuda()\n")),
         why="model and batch moved with .cuda() when a GPU is available (older tutorials' style)"),
    Case("correct", "correct_resnet18_pretrained_false_success_score_full",
         (Sub("resnet18_adaptation", "resnet18(weights=None)", "resnet18(pretrained=False)"),),
         why="torchvision's older pretrained=False instead of weights=None (a deprecation warning, the same model)"),
    Case("correct", "correct_conv1_from_old_layer_settings_success_score_full",
         (Sub("resnet18_adaptation", RESNET_CONV1,
              "old = resnet_model.conv1\n"
              "resnet_model.conv1 = nn.Conv2d(1, old.out_channels, kernel_size=old.kernel_size, stride=old.stride,\n"
              "                               padding=old.padding, bias=False)"),),
         why="the new conv1 built from the old layer's settings (out_channels, kernel_size, stride, padding)"),
    Case("correct", "correct_extra_cell_stage_shapes_with_getattr_success_score_full",
         (InsertAfter("resnet18_adaptation",
                      "# the feature maps' shapes through the adapted network\n"
                      "with torch.no_grad():\n"
                      "    h = resnet_model.maxpool(resnet_model.relu(resnet_model.bn1(resnet_model.conv1(images))))\n"
                      "    for stage in ['layer1', 'layer2', 'layer3', 'layer4']:\n"
                      "        h = getattr(resnet_model, stage)(h)\n"
                      "        print(stage, tuple(h.shape))"),),
         why="an extra cell that follows the batch through the stages with getattr(resnet_model, stage), the "
             "notebook's own U-Net cell's idiom (an honest notebook is not marked for review)"),
    Case("correct", "correct_warnings_ignored_and_more_seeds_success_score_full",
         (Sub("setup", "torch.manual_seed(42)\n",
              "import random\nimport warnings\nwarnings.filterwarnings('ignore')\n"
              "random.seed(42)\nnp.random.seed(42)\ntorch.manual_seed(42)\n"
              "torch.backends.cudnn.deterministic = True\n"),),
         why="warnings silenced and Python's, NumPy's and cuDNN's randomness fixed as well"),
    Case("correct", "correct_shortcut_made_before_a_sequential_main_path_success_score_full",
         (Replace("residual_block", SHORTCUT_BEFORE_SEQUENTIAL_MAIN_PATH),),
         why="red team 14: the shortcut built before a main path written as one nn.Sequential; with equal channels "
             "and stride 2 the projection's 1x1 conv and BN followed by conv1 and bn1 look like conv-BN-conv-BN, and "
             "were taken for the main path (\"the shortcut is x itself\", 1/3 lost)"),
    Case("correct", "correct_demo_blocks_switched_to_eval_afterwards_success_score_full",
         (InsertAfter("residual_block_demo",
                      "block_same_dim.eval()\nblock_change_dim.eval()\nwith torch.no_grad():\n"
                      "    print(block_same_dim(input_tensor_1).shape, block_change_dim(input_tensor_2).shape)\n"),),
         why="red team 14: a cell after the demo puts its blocks in eval mode; the outputs were made in train mode, "
             "and rerunning the blocks only in the mode the notebook left them in could not reproduce them (0.5 lost)"),
    Case("correct", "correct_forward_timed_with_cuda_events_success_score_full",
         (Sub("resnet18_adaptation", "output = resnet_model(images)\n",
              "if torch.cuda.is_available():\n"
              "    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)\n"
              "    start.record()\n"
              "    output = resnet_model(images)\n"
              "    end.record()\n"
              "    torch.cuda.synchronize()\n"
              "    print(f\"forward: {start.elapsed_time(end):.1f} ms\")\n"
              "else:\n"
              "    output = resnet_model(images)\n"),),
         why="red team 14: the forward timed with CUDA events where there is a GPU (the usual way to time GPU code); "
             "the simulated GPU had no torch.cuda.Event, and the stop was charged as a device mistake (0.25 lost)"),
]

BUGS = [
    # --- real mistakes that keep full marks today: each must lose points in its own item ---
    Case("bugs", "bug_projection_condition_less_than_score_partial",
         (Sub("residual_block", PROJECTION_IF, "if stride != 1 or in_channels < out_channels:"),),
         expect={"residual_block_shapes": _r(3 - NINTH), "shortcut_projection": _r(3 - THIRD)},
         why="projects only when the channels grow (in_channels < out_channels): a block with fewer output channels "
             "gets the identity and cannot add x. Shortcut: the channels-change kind (1/3). Shapes: such a block "
             "raises, one hidden configuration (1/9)"),
    Case("bugs", "bug_projection_condition_stride_equals_two_score_partial",
         (Sub("residual_block", PROJECTION_IF, "if stride == 2 or in_channels != out_channels:"),),
         expect={"residual_block_shapes": _r(3 - NINTH), "shortcut_projection": _r(3 - THIRD)},
         why="projects only at stride 2 (stride == 2 instead of != 1): a stride-3 block with equal channels adds a "
             "full-size x and raises. Shortcut: the stride-change kind (1/3); shapes: one hidden configuration (1/9)"),
    Case("bugs", "bug_shortcut_output_detached_score_partial",
         (Sub("residual_block", ADD, "        out += self.shortcut(x).detach()\n"),),
         expect={"shortcut_projection": 2.0},
         why="out += self.shortcut(x).detach(): the same numbers, but no gradient flows along the shortcut, which "
             "is the point of a residual connection. Shortcut: the join (2 x 0.5); UNCLEAR which checks, the join "
             "is the most defensible"),
    Case("bugs", "bug_shortcut_input_detached_score_partial",
         (Sub("residual_block", ADD, "        out += self.shortcut(x.detach())\n"),),
         expect={"shortcut_projection": 2.0},
         why="out += self.shortcut(x.detach()): the gradient cannot reach x along the shortcut. Shortcut: the join "
             "(2 x 0.5)"),
    Case("bugs", "bug_main_path_detached_score_partial",
         (Sub("residual_block", SECOND, "out = self.bn2(self.conv2(out)).detach()"),),
         expect={"residual_block_shapes": 2.0},
         why="the main path's output detached: conv1, bn1, conv2 and bn2 never get a gradient, the block cannot "
             "learn. Shapes item's main-path checks (2 x 0.5)"),
    Case("bugs", "bug_printed_shape_of_output_tensor_1_score_partial",
         (Sub("residual_block_demo", "{output_tensor_2.shape}", "{output_tensor_1.shape}"),),
         expect={"residual_block_shapes": 2.75},
         why="the printed-shape blank filled with output_tensor_1.shape: the printed answer to 'the shape of the "
             "second output' is wrong. Shapes: the output_tensor_2 seed check (0.25)"),
    Case("bugs", "bug_printed_shape_of_input_tensor_2_score_partial",
         (Sub("residual_block_demo", "{output_tensor_2.shape}", "{input_tensor_2.shape}"),),
         expect={"residual_block_shapes": 2.75},
         why="the printed-shape blank filled with input_tensor_2.shape. Shapes: the output_tensor_2 seed check (0.25)"),
    Case("bugs", "bug_printed_shape_typed_as_text_score_partial",
         (Sub("residual_block_demo", PRINT_2, 'print("Output shape (changed dim): torch.Size([4, 128, 16, 16])")'),),
         expect={"residual_block_shapes": 2.75},
         why="the expected shape typed into the print as text instead of printing output_tensor_2.shape. Shapes: "
             "the output_tensor_2 seed check (0.25)"),
    Case("bugs", "bug_demo_blocks_not_moved_to_device_score_partial",
         (Sub("residual_block_demo", "stride=1).to(device)", "stride=1)"),
          Sub("residual_block_demo", "stride=2).to(device)", "stride=2)")),
         expect={"device_placement": 1.75},
         why="the demo blocks stay on the CPU while their inputs go to device: on a GPU the demo raises. Device: "
             "one check in the world with a GPU (0.25); the demo's shapes are not charged"),
    Case("bugs", "bug_demo_inputs_not_moved_to_device_score_partial",
         (Sub("residual_block_demo", "torch.randn(4, 64, 32, 32).to(device)", "torch.randn(4, 64, 32, 32)"),),
         expect={"device_placement": 1.75},
         why="the demo inputs stay on the CPU while the blocks go to device: on a GPU the demo raises. Device: one "
             "check in the world with a GPU (0.25)"),
    Case("bugs", "bug_device_cuda_1_score_partial",
         (Sub("setup", 'torch.device("cuda" if', 'torch.device("cuda:1" if'),),
         expect={"device_placement": 1.0},
         why="cuda:1 as the GPU: on a machine with one GPU that device does not exist, so every .to(device) raises. "
             "Device: the four checks of the world with a GPU (4 x 0.25); nothing else is charged"),
    Case("bugs", "bug_default_stride_two_score_partial",
         (Sub("residual_block", "def __init__(self, in_channels, out_channels, stride=1):",
              "def __init__(self, in_channels, out_channels, stride=2):"),),
         expect={"residual_block_shapes": _r(3 - NINTH)},
         why="the signature's default changed to stride=2: ResidualBlock(64, 64) halves its input. Shapes: one "
             "configuration built without a stride (1/9)"),
    Case("bugs", "bug_block_always_projects_score_partial",
         (Replace("residual_block", ALWAYS_PROJECTS),),
         expect={"shortcut_projection": 2.0},
         why="the projection built for every block, identity blocks too. Shortcut: the identity checks (2 x 0.5)"),

    # --- main-path mistakes inside forward: shapes item, never the shortcut ---
    Case("bugs", "bug_forward_no_first_relu_score_partial",
         (Sub("residual_block", FIRST, "out = self.bn1(self.conv1(x))"),),
         expect={"residual_block_shapes": 2.0},
         why="no ReLU between bn1 and conv2. Main path (2 x 0.5); the shortcut and its join are right"),
    Case("bugs", "bug_forward_relu_before_bn1_score_partial",
         (Sub("residual_block", FIRST, "out = self.bn1(F.relu(self.conv1(x)))"),),
         expect={"residual_block_shapes": 2.0},
         why="the first ReLU applied before bn1 instead of after it. Main path (2 x 0.5)"),
    Case("bugs", "bug_forward_bn1_used_twice_score_partial",
         (Sub("residual_block", SECOND, "out = self.bn1(self.conv2(out))"),),
         expect={"residual_block_shapes": 2.0},
         why="bn1 used after conv2 too, bn2 never used. Main path (2 x 0.5); the shapes are right"),
    Case("bugs", "bug_forward_bn2_skipped_score_partial",
         (Sub("residual_block", SECOND, "out = self.conv2(out)"),),
         expect={"residual_block_shapes": 2.0},
         why="bn2 built but never called. Main path (2 x 0.5); the shapes are right"),
    Case("bugs", "bug_forward_bn2_before_conv2_score_partial",
         (Sub("residual_block", SECOND, "out = self.conv2(self.bn2(out))"),),
         expect={"residual_block_shapes": 2.0},
         why="bn2 applied before conv2 instead of after it. Main path (2 x 0.5)"),
    Case("bugs", "bug_forward_leaky_relu_score_partial",
         (Sub("residual_block", FIRST, "out = F.leaky_relu(self.bn1(self.conv1(x)), 0.1)"),),
         expect={"residual_block_shapes": 2.0},
         why="a leaky ReLU on the main path instead of the ReLU. Main path (2 x 0.5)"),
    Case("bugs", "bug_forward_dropout_on_main_path_score_partial",
         (Sub("residual_block", FIRST, FIRST + "\n        out = F.dropout(out, p=0.2, training=self.training)"),),
         expect={"residual_block_shapes": 2.0},
         why="dropout added between the two convolutions (not part of the basic block; in train mode the main "
             "path differs). Main path (2 x 0.5)"),
    Case("bugs", "bug_forward_bn1_forced_train_score_partial",
         (Sub("residual_block", FIRST,
              "out = F.relu(F.batch_norm(self.conv1(x), self.bn1.running_mean, self.bn1.running_var,\n"
              "                                 self.bn1.weight, self.bn1.bias, training=True))"),),
         expect={"residual_block_shapes": 2.0},
         why="bn1 written with F.batch_norm(..., training=True): batch statistics even in eval mode. Main path "
             "(2 x 0.5)"),
    Case("bugs", "bug_forward_bn1_forced_eval_score_partial",
         (Sub("residual_block", FIRST,
              "out = F.relu(F.batch_norm(self.conv1(x), self.bn1.running_mean, self.bn1.running_var,\n"
              "                                 self.bn1.weight, self.bn1.bias, training=False))"),),
         expect={"residual_block_shapes": 2.0},
         why="bn1 written with F.batch_norm(..., training=False): running statistics even in train mode. Main "
             "path (2 x 0.5)"),
    Case("bugs", "bug_shortcut_added_after_final_relu_score_partial",
         (Sub("residual_block", ADD + "\n        # TODO: the final activation, applied after the addition\n" + FINAL,
              FINAL + ADD),),
         expect={"shortcut_projection": 2.0},
         why="the two TODO lines swapped: ReLU first, then the shortcut added. The join (2 x 0.5)"),
    Case("bugs", "bug_projection_condition_and_score_partial",
         (Sub("residual_block", PROJECTION_IF, "if stride != 1 and in_channels != out_channels:"),),
         expect={"residual_block_shapes": _r(3 - 6 * NINTH), "shortcut_projection": _r(3 - 2 * THIRD)},
         why="`and` instead of `or`: only blocks that change both stride and channels project. Shortcut: two kinds "
             "(2 x 1/3); shapes: the six hidden configurations that change only one (6 x 1/9)"),

    # --- one wrong literal on the main path: shapes only ---
    Case("bugs", "bug_conv1_padding_two_score_partial",
         (Sub("residual_block", CONV1, "kernel_size=3, stride=stride, padding=2, bias=False)"),),
         expect={"residual_block_shapes": 0.0},
         why="conv1 with padding=2: every main path comes out too large, no block can add its shortcut. Every "
             "shape check and the main path fail (3); the shortcut and its join are right (nothing charged there)"),
    Case("bugs", "bug_conv1_kernel_five_score_partial",
         (Sub("residual_block", CONV1, "kernel_size=5, stride=stride, padding=1, bias=False)"),),
         expect={"residual_block_shapes": 0.0},
         why="conv1 with a 5x5 kernel and padding 1: every main path comes out too small. Shapes 0; shortcut "
             "untouched"),
    Case("bugs", "bug_conv2_padding_zero_score_partial",
         (Sub("residual_block", CONV2, CONV2.replace("padding=1", "padding=0")),),
         expect={"residual_block_shapes": 0.0},
         why="conv2 without padding: every main path shrinks by 2. Shapes 0; shortcut untouched"),
    Case("bugs", "bug_conv1_fixed_stride_two_score_partial",
         (Sub("residual_block", CONV1, "kernel_size=3, stride=2, padding=1, bias=False)"),),
         expect={"residual_block_shapes": _r(3 - 0.25 - 0.5 - 6 * NINTH - 0.5)},
         why="conv1's stride written as 2 instead of stride: stride-1 blocks halve and cannot add x. Shapes: the "
             "stride-1 seed case (0.25), both demo outputs (2 x 0.25: the demo cell stops at the first block, so "
             "output_tensor_2 is never made), the six hidden stride-1 cases (6 x 1/9), the identity block's main "
             "path (0.5); shortcut untouched"),

    # --- messages that must name the actual mistake ---
    Case("bugs", "bug_conv1_dilation_two_score_partial",
         (Sub("residual_block", CONV1, "kernel_size=3, stride=stride, padding=2, dilation=2, bias=False)"),),
         expect={"residual_block_shapes": 2.0},
         why="conv1 dilated (dilation=2, padding=2): shapes right, main path wrong (2 x 0.5); the message must "
             "name the dilation, not the padding"),
    Case("bugs", "bug_bn1_affine_false_score_partial",
         (Sub("residual_block", BN1, "self.bn1 = nn.BatchNorm2d(out_channels, affine=False)"),),
         expect={"residual_block_shapes": 2.0},
         why="bn1 without its learnable scale and shift (affine=False). Main path (2 x 0.5); the message must say "
             "affine"),
    Case("bugs", "bug_bn1_instance_norm_score_partial",
         (Sub("residual_block", BN1, "self.bn1 = nn.InstanceNorm2d(out_channels)"),),
         expect={"residual_block_shapes": 2.0},
         why="InstanceNorm2d instead of BatchNorm2d for bn1: shapes right, main path wrong (2 x 0.5); the message "
             "must say bn1 must be a BatchNorm2d"),
    Case("bugs", "bug_bn2_track_running_stats_false_score_partial",
         (Sub("residual_block", BN2_LINE, "        self.bn2 = nn.BatchNorm2d(out_channels, track_running_stats=False)\n"),),
         expect={"residual_block_shapes": 2.0},
         why="bn2 keeps no running statistics, so eval mode uses batch statistics. Main path (2 x 0.5); the "
             "message must name track_running_stats"),
    Case("bugs", "bug_demo_change_dim_wrong_out_channels_score_partial",
         (Sub("residual_block_demo", "out_channels=128, stride=2)", "out_channels=256, stride=2)"),),
         expect={"residual_block_shapes": 2.75},
         why="block_change_dim built with 256 output channels: output_tensor_2 has the wrong channel count (0.25); "
             "its stride is right, so the message must not ask for the stride"),
    Case("bugs", "bug_demo_change_dim_stride_one_score_partial",
         (Sub("residual_block_demo", "out_channels=128, stride=2)", "out_channels=128, stride=1)"),),
         expect={"residual_block_shapes": 2.75},
         why="the demo's stride blank filled with 1: output_tensor_2 keeps 32x32 (0.25); here the stride hint is "
             "the right message"),
    Case("bugs", "bug_shortcut_projection_padding_one_score_partial",
         (Sub("residual_block", SHORTCUT_CONV, SHORTCUT_CONV.replace("bias=False", "padding=1, bias=False")),),
         expect={"residual_block_shapes": _r(3 - 0.5 - 7 * NINTH), "shortcut_projection": 1.5},
         why="the 1x1 projection padded (padding=1): its output is 2 larger and cannot be added. Shortcut: the "
             "three kinds (1) and the projecting join (0.5); shapes: every projecting configuration raises (seed "
             "case, output_tensor_2, seven hidden); the main path is right and not charged; the message must name "
             "the padding"),
    Case("bugs", "bug_projection_bn_on_in_channels_score_partial",
         (Sub("residual_block", SHORTCUT_BN, "                nn.BatchNorm2d(in_channels)\n            )"),),
         expect={"residual_block_shapes": _r(3 - 0.5 - 4 * NINTH), "shortcut_projection": _r(3 - 2 * THIRD - 0.5)},
         why="the projection's BatchNorm sized for in_channels: blocks that change channels raise. Shortcut: two "
             "kinds and the projecting join; shapes: the seed case, output_tensor_2 and four hidden cases (the main "
             "path is right and not charged)"),
    Case("bugs", "bug_projection_conv_with_bias_score_partial",
         (Sub("residual_block", SHORTCUT_CONV, SHORTCUT_CONV.replace("bias=False", "bias=True")),),
         expect={"shortcut_projection": 2.0},
         why="the projection convolution with a bias, which BatchNorm makes redundant: the item's rule says no "
             "bias (3 x 1/3)"),

    # --- ResNet and device: each charged in its own item ---
    Case("bugs", "bug_fc_in_features_doubled_score_partial",
         (Sub("resnet18_adaptation", FC, "resnet_model.fc = nn.Linear(num_ftrs * 2, 2)"),),
         expect={"resnet18_adaptation": 1.0},
         why="fc takes 1024 inputs: fc wrong and no output (2 x 0.5). The missing output is a ResNet mistake, not "
             "a device one: device untouched"),
    Case("bugs", "bug_resnet_conv1_32_filters_score_partial",
         (Sub("resnet18_adaptation", "nn.Conv2d(1, 64, kernel_size=7", "nn.Conv2d(1, 32, kernel_size=7"),),
         expect={"resnet18_adaptation": 1.0},
         why="conv1 with 32 filters: bn1 cannot take them, so no output. conv1 and the output (2 x 0.5); device "
             "untouched"),
    Case("bugs", "bug_batch_size_one_score_partial",
         (Sub("resnet18_adaptation", "batch_size=4)))", "batch_size=1)))"),),
         expect={"resnet18_adaptation": 1.5},
         why="batch_size=1: the batch has the wrong shape (0.5), and in train mode BatchNorm cannot normalise one "
             "value per channel, so there is no output; that is not a device mistake: device untouched"),
    Case("bugs", "bug_batch_size_eight_score_partial",
         (Sub("resnet18_adaptation", "batch_size=4)))", "batch_size=8)))"),),
         expect={"resnet18_adaptation": 1.5},
         why="batch_size=8: the batch and output shapes are wrong (0.5)"),
    Case("bugs", "bug_dataloader_without_totensor_score_partial",
         (Sub("resnet18_adaptation", "transform=transforms.ToTensor(), ", ""),),
         expect={"resnet18_adaptation": 1.5},
         why="no ToTensor transform: the DataLoader cannot batch PIL images, so there is no batch and no output. "
             "The batch/output check (0.5); a data mistake is not a device mistake: device untouched"),
    Case("bugs", "bug_conv1_kept_images_repeated_score_partial",
         (Sub("resnet18_adaptation", RESNET_CONV1 + "\n", ""),
          Sub("resnet18_adaptation", BATCH_TO, "images = images.repeat(1, 3, 1, 1).to(device)  # grey -> RGB\n")),
         expect={"resnet18_adaptation": 1.0},
         why="conv1 left as the 3-channel stem and the grey batch repeated to 3 channels: conv1 and the batch shape "
             "(2 x 0.5)"),
    Case("bugs", "bug_resnet_conv1_padding_one_score_partial",
         (Sub("resnet18_adaptation", RESNET_CONV1, RESNET_CONV1.replace("padding=3", "padding=1")),),
         expect={"resnet18_adaptation": 1.5},
         why="the new conv1 with padding 1 instead of ResNet18's 3 (0.5)"),
    Case("bugs", "bug_maxpool_removed_score_partial",
         (Sub("resnet18_adaptation", FC + "\n", FC + "\nresnet_model.maxpool = nn.Identity()  # small images: keep the size\n"),),
         expect={"resnet18_adaptation": 1.5},
         why="the stem's max-pool removed (a CIFAR habit): the rest of ResNet18 is not unchanged (0.5); the message "
             "should name maxpool"),
    Case("bugs", "bug_fc_without_bias_score_partial",
         (Sub("resnet18_adaptation", FC, "resnet_model.fc = nn.Linear(num_ftrs, 2, bias=False)"),),
         expect={"resnet18_adaptation": 1.5},
         why="fc without its bias (0.5); the message should say so"),
    Case("bugs", "bug_output_argmax_score_partial",
         (Sub("resnet18_adaptation", FORWARD, "output = resnet_model(images).argmax(dim=1)\n"),),
         expect={"resnet18_adaptation": 1.5},
         why="output reduced to class indices, shape (4,) instead of the (4, 2) scores (0.5)"),
    Case("bugs", "bug_device_hardcoded_cuda_zero_score_partial",
         (Sub("setup", DEVICE, 'device = torch.device("cuda:0")'),),
         expect={"device_placement": 1.0},
         why="device hard-coded to cuda:0: without a GPU every .to(device) raises. Device: the four checks of the "
             "world without a GPU (4 x 0.25). The demo outputs and the ResNet output are missing only because of "
             "the device: no shape or ResNet points are charged"),
    Case("bugs", "bug_batch_sent_to_cuda_literal_score_partial",
         (Sub("resnet18_adaptation", BATCH_TO, 'images = images.to("cuda")\n'),),
         expect={"device_placement": 1.75},
         why="the batch sent to \"cuda\" instead of device: without a GPU the line raises and there is no output. "
             "Device: the output in the world without a GPU (0.25; the batch stays on the CPU, which is that "
             "world's device); the ResNet output shape is not charged for a device mistake"),
    Case("bugs", "bug_device_gpu_typo_score_partial",
         (Sub("setup", '"cuda" if', '"gpu" if'),),
         expect={"device_placement": 1.0},
         why="torch.device(\"gpu\"), not a PyTorch device: with a GPU the setup cell raises and nothing is placed. "
             "Device: the four checks of the world with a GPU"),
    Case("bugs", "bug_batch_to_device_not_assigned_score_partial",
         (Sub("resnet18_adaptation", BATCH_TO, "images.to(device)\n"),),
         expect={"device_placement": 1.5},
         why="images.to(device) without assigning the result (a tensor's .to is not in place): with a GPU the batch "
             "stays on the CPU and the model cannot take it. Batch and output in that world (2 x 0.25)"),
    Case("bugs", "bug_final_activation_leaky_relu_score_partial",
         (Sub("residual_block", FINAL, "        out = F.leaky_relu(out, 0.01)\n"),),
         expect={"shortcut_projection": 2},
         why="red team 14: the final activation is a leaky ReLU: how the shortcut joins is wrong (the shortcut "
             "item's two join checks); the main path is right, and was charged too (2 x 0.5 more)"),
    Case("bugs", "bug_shortcut_added_at_half_weight_score_partial",
         (Sub("residual_block", ADD, "        out += 0.5 * self.shortcut(x)\n"),),
         expect={"shortcut_projection": 2},
         why="red team 14: the shortcut added at half weight: a join mistake only, charged to the main path as well"),
    Case("bugs", "bug_output_moved_back_to_the_cpu_score_partial",
         (Sub("resnet18_adaptation", "output = resnet_model(images)\n",
              "output = resnet_model(images).detach().cpu()\n"),),
         expect={"device_placement": 1.75},
         why="red team 14: the output moved back to the CPU: on a GPU machine it is not on device (0.25); the "
             "simulated GPU could not copy data back and excused it, so the two kinds of machine disagreed"),
]

CASES = CORRECT + BUGS

# What the messages of an item's failing checks must and must not say (case-insensitive
# substrings): the examples of messages that name a different mistake, and a few more.
MESSAGES = {
    "bug_conv1_dilation_two_score_partial":
        {"item": "residual_block_shapes", "must": ["dilation"], "must_not": ["needs padding=1"]},
    "bug_bn1_affine_false_score_partial":
        {"item": "residual_block_shapes", "must": ["affine"], "must_not": ["has the shape ()"]},
    "bug_bn1_instance_norm_score_partial":
        {"item": "residual_block_shapes", "must": ["BatchNorm2d"], "must_not": ["has the shape ()"]},
    "bug_bn2_track_running_stats_false_score_partial":
        {"item": "residual_block_shapes", "must": ["track_running_stats"], "must_not": ["has the shape ()"]},
    "bug_demo_change_dim_wrong_out_channels_score_partial":
        {"item": "residual_block_shapes", "must": ["channels"], "must_not": ["needs the stride"]},
    "bug_demo_change_dim_stride_one_score_partial":
        {"item": "residual_block_shapes", "must": ["stride"], "must_not": []},
    "bug_shortcut_projection_padding_one_score_partial":
        {"item": "shortcut_projection", "must": ["padding"], "must_not": []},
    "bug_maxpool_removed_score_partial":
        {"item": "resnet18_adaptation", "must": ["maxpool"], "must_not": []},
    "bug_fc_without_bias_score_partial":
        {"item": "resnet18_adaptation", "must": ["bias"], "must_not": []},
    "bug_forward_no_first_relu_score_partial":
        {"item": "residual_block_shapes", "must": ["relu"], "must_not": []},
    "bug_forward_relu_before_bn1_score_partial":
        {"item": "residual_block_shapes", "must": ["relu"], "must_not": []},
    "bug_forward_leaky_relu_score_partial":
        {"item": "residual_block_shapes", "must": ["relu"], "must_not": []},
    "bug_forward_bn1_used_twice_score_partial":
        {"item": "residual_block_shapes", "must": ["bn2"], "must_not": []},
    "bug_forward_bn2_skipped_score_partial":
        {"item": "residual_block_shapes", "must": ["bn2"], "must_not": []},
    "bug_forward_bn2_before_conv2_score_partial":
        {"item": "residual_block_shapes", "must": ["bn2"], "must_not": []},
    "bug_printed_shape_of_output_tensor_1_score_partial":
        {"item": "residual_block_shapes", "must": ["print"], "must_not": []},
    "bug_printed_shape_of_input_tensor_2_score_partial":
        {"item": "residual_block_shapes", "must": ["print"], "must_not": []},
    "bug_printed_shape_typed_as_text_score_partial":
        {"item": "residual_block_shapes", "must": ["print"], "must_not": []},
    "bug_shortcut_output_detached_score_partial":
        {"item": "shortcut_projection", "must": ["gradient"], "must_not": []},
    "bug_main_path_detached_score_partial":
        {"item": "residual_block_shapes", "must": ["gradient"], "must_not": []},
}

assert set(MESSAGES) <= {c.name for c in CASES}


def message_problems(name: str, failing: list[str]) -> list[str]:
    """What is wrong with the messages of the failing checks of the item MESSAGES names for the case
    (an empty list: they name the mistake)."""
    rule = MESSAGES[name]
    if not failing:
        return ["no failing check in the item carries a message"]
    text = "\n".join(failing).lower()
    missing = [m for m in rule["must"] if m.lower() not in text]
    wrong = [m for m in rule["must_not"] if m.lower() in text]
    return ([f"does not say {', '.join(repr(m) for m in missing)}"] if missing else []) + \
        ([f"says {', '.join(repr(m) for m in wrong)}"] if wrong else [])


# Cases the grader does not score fairly yet (measured; tests/test_submissions.py marks them as
# expected failures, strictly: one that starts to pass must be taken off this list).
PENDING: frozenset[str] = frozenset()  # every case is scored as its `expect` says

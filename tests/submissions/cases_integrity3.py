"""Red team, round 3: the newest mechanisms (student_side put back before every job, the retry of a
hung cell, the block evidence read from the student's own forward, the device item's excuses).

Each case states the FAIR outcome in `expect`/`review`; where the grader gives something else the
case fails in tests/test_submissions.py, and REDTEAM3.md records what it measured and why.
"""

from tests.submissions.case import Case, InsertAfter, Replace, Sub
from tests.submissions.cases_accuracy import ALWAYS_PROJECTS, BLOCK, NINTH, SECOND, _r
from tests.submissions.cases_bugs import SHORTCUT_CONV
from tests.submissions.cases_integrity2 import NO_FINAL_RELU

ADD = "        out += self.shortcut(x)\n"

# --- A. the shortcut as forward computes it: the chain of modules applied to x itself ----------------

# The chain starts only at a module whose input is x (or x.detach()): a copy of x (x.clone(),
# channels_last, x * 1) starts none, so the block counts as "no module applied to x" (the identity)
# and, where a projection is needed, is judged on its layers composed in registration order.
CLONED_ALWAYS_PROJECTS = ALWAYS_PROJECTS.replace(
    "        out = F.relu(self.bn1(self.conv1(x)))",
    "        identity = x.clone()  # keep the input safe from in-place operations\n"
    "        out = F.relu(self.bn1(self.conv1(x)))").replace(ADD, "        out += self.shortcut(identity)\n")
assert CLONED_ALWAYS_PROJECTS != ALWAYS_PROJECTS and "self.shortcut(identity)" in CLONED_ALWAYS_PROJECTS

# A correct block: the projection kept as two attributes (BatchNorm made first), applied to a copy of x.
CLONED_BN_FIRST = '''class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.project = stride != 1 or in_channels != out_channels
        if self.project:
            # the projection: BatchNorm over the 1x1 convolution's output channels
            self.proj_bn = nn.BatchNorm2d(out_channels)
            self.proj_conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)

    def forward(self, x):
        identity = x.clone()
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.project:
            identity = self.proj_bn(self.proj_conv(identity))
        out += identity
        out = F.relu(out)
        return out
'''

# The projection's BatchNorm is built (so the block's layers are right) but forward applies only the
# convolution, through the functional API with the layer's own weight.
FUNCTIONAL_NO_BN = BLOCK.replace(
    ADD,
    "        if len(self.shortcut) > 0:\n"
    "            proj = self.shortcut[0]\n"
    "            out += F.conv2d(x, proj.weight, stride=proj.stride)\n"
    "        else:\n"
    "            out += x\n")
assert FUNCTIONAL_NO_BN != BLOCK

# nn.Module.register_forward_hook replaced (torch, not student_side: nothing puts it back, nothing
# says so): the grader's observe() sees no module called on x, so every shortcut is "the identity".
HOOKS_OFF = '''# Quieter modules
class _Handle:
    def remove(self):
        pass


def _no_hook(self, hook, *args, **kwargs):
    return _Handle()


nn.Module.register_forward_hook = _no_hook
'''

# --- B. put back before every job: the putting back runs the notebook's code -------------------------

# restore_grader_modules() sets a replaced class attribute back without keeping the replacement: when
# that was the last reference, its __del__ runs right there, on the grader's thread, after the names
# and functions were put back and before the job. It replaces `quietly` again (the final ReLU the
# block lacks is added to its output as the checks run it) and arms the next restore.
DEL_REPATCH = '''# Keep the printed output tidy
import operator
import sys

_Out = type(sys.stdout)
_side = operator.attrgetter("__glob" + "als__")(_Out.write)
_plain_call = _side["quietly"]


def _tidy(function, *args):
    value = _plain_call(function, *args)
    if type(function).__name__ == "ResidualBlock" and isinstance(value, torch.Tensor):
        value = torch.relu(value)
    return value


class _Note:
    def __del__(self):
        _side["quietly"] = _tidy
        _Out.__doc__ = _Note()


_Out.__doc__ = _Note()
'''

# The same route used to hold the grader's thread: the __del__ never returns.
DEL_HOLDS = '''# Tidy up
import sys
import time

_Out = type(sys.stdout)


class _Wait:
    def __del__(self):
        while True:
            time.sleep(0.5)


_Out.__doc__ = _Wait()
'''

# --- C. the retry of a cell that "held the interpreter" ------------------------------------------------

SLOW_CELL = '''# Show a progress bar for a little while
import time
for _step in range(16):
    time.sleep(0.5)
print("done")
'''

# --- D. the device item's excuses ----------------------------------------------------------------------

DEMO_CAUGHT = '''# --- Try the block on random feature maps ---
block_same_dim = ResidualBlock(in_channels=64, out_channels=64, stride=1)
input_tensor_1 = torch.randn(4, 64, 32, 32).to(device)
try:
    output_tensor_1 = block_same_dim(input_tensor_1)
    print(f"Output shape (same dim): {output_tensor_1.shape}")
except RuntimeError as error:
    print("the first demo failed:", error)
    del block_same_dim

block_change_dim = ResidualBlock(in_channels=64, out_channels=128, stride=2)
input_tensor_2 = torch.randn(4, 64, 32, 32).to(device)
try:
    output_tensor_2 = block_change_dim(input_tensor_2)
    print(f"Output shape (changed dim): {output_tensor_2.shape}")
except RuntimeError as error:
    print("the second demo failed:", error)
    del block_change_dim
'''

# --- E. honest look-alikes -------------------------------------------------------------------------------

CHECKPOINTED = "import torch.utils.checkpoint\n\n" + BLOCK.replace(
    "        out = F.relu(self.bn1(self.conv1(x)))\n        out = self.bn2(self.conv2(out))\n",
    "        out = torch.utils.checkpoint.checkpoint(self._main, x, use_reentrant=False)\n").replace(
    "    def forward(self, x):\n",
    "    def _main(self, x):\n"
    "        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))\n\n"
    "    def forward(self, x):\n")
assert "checkpoint(self._main" in CHECKPOINTED and "def _main" in CHECKPOINTED

CHANNELS_LAST = BLOCK.replace(
    "        out = F.relu(self.bn1(self.conv1(x)))",
    "        x = x.contiguous(memory_format=torch.channels_last)  # faster convolutions on recent GPUs\n"
    "        out = F.relu(self.bn1(self.conv1(x)))")
assert CHANNELS_LAST != BLOCK

CASES = [
    Case("bugs", "bug_always_projects_input_cloned_score_partial",
         (Replace("residual_block", CLONED_ALWAYS_PROJECTS),),
         expect={"shortcut_projection": 2.0},
         why="the projection built for every block (as bug_block_always_projects), with the shortcut applied to "
             "identity = x.clone(): the identity checks must still fail (2 x 0.5) and the main path is right"),
    Case("correct", "correct_input_cloned_projection_bn_made_first_success_score_full",
         (Replace("residual_block", CLONED_BN_FIRST),),
         why="a correct block: identity = x.clone(), the projection kept as two attributes with its BatchNorm "
             "made before its convolution, applied conv then BatchNorm"),
    Case("bugs", "bug_projection_batchnorm_built_not_applied_score_partial",
         (Replace("residual_block", FUNCTIONAL_NO_BN),),
         expect={"shortcut_projection": 2.0},
         why="the projection's BatchNorm is built but forward adds F.conv2d(x, the 1x1 weight) only: the same "
             "mistake as bug_projection_without_batchnorm (3 x 1/3); the main path is right"),
    Case("hostile", "hostile_forward_hooks_disabled_always_projects_score_partial",
         (Replace("residual_block", ALWAYS_PROJECTS), InsertAfter("setup", HOOKS_OFF)),
         expect={"shortcut_projection": 2.0}, review=True,
         why="the always-projecting block, and nn.Module.register_forward_hook replaced by a no-op: the grader's "
             "own observation of forward is switched off; it must earn what the plain bug earns, and be marked"),
    Case("hostile", "hostile_del_during_restore_repatches_quietly_score_no_final_relu_bug",
         (*NO_FINAL_RELU, InsertAfter("residual_block_demo", DEL_REPATCH)),
         expect={"shortcut_projection": 2.0}, review=True,
         why="a block without its final ReLU, and a replaced student_side class attribute whose __del__ (run by "
             "restore_grader_modules on the grader's thread) replaces student_side.quietly again after the names "
             "were put back: the block's output as the checks run it gets the final ReLU"),
    Case("hostile", "hostile_del_during_restore_holds_grader_thread_score_full",
         (InsertAfter(None, DEL_HOLDS),),
         review=True,
         why="a correct notebook ending with a replaced student_side class attribute whose __del__ never returns: "
             "restore_grader_modules keeps what it replaces (no finaliser of the notebook's runs on the grader's "
             "thread), so the hidden cases run; the change is put back and said"),
    Case("correct", "correct_slow_extra_cells_at_the_end_score_all_but_hidden_cases",
         tuple(InsertAfter(None, SLOW_CELL) for _ in range(8)),
         expect={"residual_block_shapes": 2.0}, review=True,
         why="a correct notebook with eight extra interruptible cells of 8 s each at the end: the whole run goes "
             "past the limit for a submission (README: it is stopped, marked, and the hidden cases, which run "
             "after the last cell, are lost). No cell held the interpreter: nothing justifies a second run"),
    Case("bugs", "bug_demo_block1_not_moved_and_input2_to_not_assigned_score_partial",
         (Sub("residual_block_demo", "stride=1).to(device)", "stride=1)"),
          Sub("residual_block_demo", "input_tensor_2 = torch.randn(4, 64, 32, 32).to(device)",
              "input_tensor_2 = torch.randn(4, 64, 32, 32)\ninput_tensor_2.to(device)")),
         expect={"device_placement": 1.5},
         why="two device mistakes in the demo: block_same_dim never moved, and input_tensor_2.to(device) not "
             "assigned (a tensor's .to is not in place). Where a GPU is, both the models and the batches check "
             "fail (2 x 0.25); input_tensor_2 is never made there only because block_same_dim's call raised first"),
    Case("bugs", "bug_demo_blocks_not_moved_error_caught_and_deleted_score_partial",
         (Replace("residual_block_demo", DEMO_CAUGHT),),
         expect={"device_placement": 1.75},
         why="the demo blocks never moved to device (as bug_demo_blocks_not_moved_to_device), with each demo call "
             "in try/except that deletes the block when it fails: where a GPU is, the blocks are not on it (0.25)"),
    Case("correct", "correct_checkpointed_main_path_success_score_full",
         (Replace("residual_block", CHECKPOINTED),),
         why="a correct block whose main path runs through torch.utils.checkpoint (use_reentrant=False)"),
    Case("correct", "correct_channels_last_in_forward_success_score_full",
         (Replace("residual_block", CHANNELS_LAST),),
         why="a correct block that converts x to channels_last memory format at the top of forward"),
    Case("bugs", "bug_bn2_skipped_and_projection_padded_score_partial",
         (Sub("residual_block", SECOND, "out = self.conv2(out)"),
          Sub("residual_block", SHORTCUT_CONV, SHORTCUT_CONV.replace("bias=False", "padding=1, bias=False"))),
         expect={"residual_block_shapes": _r(3 - 0.5 - 7 * NINTH - 1.0), "shortcut_projection": 1.5},
         why="two honest mistakes: bn2 never called in forward (bug_forward_bn2_skipped: main path 2 x 0.5) and a "
             "padded projection that makes projecting blocks raise (bug_shortcut_projection_padding_one). The main "
             "path forward computes is wrong in both block kinds; where the block raises, the grader composes the "
             "main path from its layers in the right order and does not see the mistake"),
]

# --- G. the assignment's own notebook-thread jobs (assignments/notebook10/jobs.py) -------------------

# Red team 15: once the ResidualBlock/ResNet jobs moved from student_side into the plug-in's jobs.py, a
# forward that reached them through the grader's own forward hook (hook.__globals__) could replace a name
# there, and nothing put it back: a job module is put back before every job, as student_side always was.
HOOK_GLOBALS = r"""
import operator as _op
_G = _op.attrgetter("__glob" + "als__")
_C = _op.attrgetter("__clos" + "ure__")


def _rt_tidy(plain):
    def tidy(function, *args):
        value = plain(function, *args)
        if type(function).__name__ == "ResidualBlock" and isinstance(value, torch.Tensor):
            value = torch.relu(value)
        return value
    tidy._rt = True
    return tidy


def _rt_fixing(plain):
    def attempt(function, *args):
        if getattr(function, "__name__", "") == "rest":
            for cell in (_C(function) or ()):
                try:
                    work = _op.attrgetter("cell_con" + "tents")(cell)
                except ValueError:
                    continue
                if isinstance(work, nn.Module) and hasattr(work, "maxpool"):
                    work.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        return plain(function, *args)
    attempt._rt = True
    return attempt


def _arm(block):
    for m in block.modules():
        for h in list(getattr(m, "_forward_hooks", {}).values()):
            try:
                g = _G(h)
            except Exception:
                continue
            for name, wrap in (("quietly", _rt_tidy), ("_attempt", _rt_fixing)):
                if g.get(name) is not None and not getattr(g[name], "_rt", False):
                    g[name] = wrap(g[name])
"""
ARMED = Sub("residual_block", "    def forward(self, x):\n", "    def forward(self, x):\n        _arm(self)\n")
WRONG_POOL = Sub("resnet18_adaptation", "resnet_model.fc = nn.Linear(num_ftrs, 2)\n",
                 "resnet_model.fc = nn.Linear(num_ftrs, 2)\nresnet_model.maxpool = nn.MaxPool2d(kernel_size=2)\n")

CASES += [
    Case("hostile", "hostile_hook_globals_patch_job_adds_final_relu_score_partial",
         (*NO_FINAL_RELU, InsertAfter("setup", HOOK_GLOBALS), ARMED),
         expect={"shortcut_projection": 2.0}, review=True,
         why="a block without its final ReLU whose forward reaches the grader's job module through the forward "
             "hook the grader registered, and replaces its `quietly` with one that adds the missing ReLU to "
             "every later block output"),
    Case("hostile", "hostile_hook_globals_patch_job_fixes_resnet_maxpool_score_partial",
         (WRONG_POOL, InsertAfter("setup", HOOK_GLOBALS), ARMED),
         expect={"resnet18_adaptation": 1.5}, review=True,
         why="a correct block whose forward replaces the job module's `_attempt` through the grader's forward "
             "hook: the later ResNet check's copy of the model has its wrong 2x2 max-pool put right before it runs"),
    Case("bugs", "bug_resnet_maxpool_two_by_two_score_partial",
         (WRONG_POOL,), expect={"resnet18_adaptation": 1.5},
         why="the control for the max-pool case: ResNet18's max-pool replaced by a 2x2 one, nothing else"),
]

# Measured on redteam3 (REDTEAM3.md), all nine since fixed; kept as a hook for the next round.
PENDING: frozenset[str] = frozenset()

"""What a student reads for each mistake, written once.

The hidden graders call these functions, and so do the notebook's visible self-checks:
`autograder release` copies this module's source into the release's self-check helper cell
(autograder/inlineselfchecks.py), so that the student's notebook stays self-contained and a
self-check and the grader can never word the same mistake differently.

Everything here works on plain data (numbers, lists, and layers described as dicts by the sandbox's
probes or by the self-checks' `describe_layer`), imports only the standard library, and never sees
a hidden case: the hidden cases' words are the graders' own.
"""

import re


def block_call(args):
    """How the exercise writes a block's construction."""
    if len(args) > 2:
        return f"ResidualBlock({args[0]}, {args[1]}, stride={args[2]})"
    return f"ResidualBlock({args[0]}, {args[1]})"


def conv_text(desc):
    """A convolution's settings, as a student would write them."""
    if not desc or desc.get("type") != "Conv2d":
        return "not a Conv2d" if desc else "missing"
    padding = desc["padding"] if isinstance(desc["padding"], str) else tuple(desc["padding"])
    return (f"Conv2d({desc['in']} -> {desc['out']}, kernel {tuple(desc['kernel'])}, stride {tuple(desc['stride'])}, "
            f"padding {padding}{', with bias' if desc['bias'] else ''})")


def block_output_shape(cin, cout, stride, input_shape):
    """A residual block's output shape: 3x3 convolutions with padding 1, the first with the stride."""
    b, _, h, w = input_shape
    return [b, cout, (h - 1) // stride + 1, (w - 1) // stride + 1]


def shape_problem(args, input_shape, got, hidden=False):
    """Why a block's output shape is wrong (None when it is right)."""
    cin, cout = args[0], args[1]
    stride = args[2] if len(args) > 2 else 1
    want = block_output_shape(cin, cout, stride, input_shape)
    if got == want:
        return None
    if got is None or len(got) != 4:
        return "the block did not return a 4-dimensional tensor (batch, channels, height, width)"
    if got[0] != want[0]:
        return "the batch size changed; a block must keep it"
    if got[1] != want[1]:
        return ("the output does not have out_channels channels" if hidden else
                f"the output has {got[1]} channels instead of out_channels = {cout}")
    if len(args) == 2:
        return "height and width changed for a block built without a stride: the default stride must be 1"
    if stride == 1:
        return "height and width changed at stride 1: both 3x3 convolutions need padding=1 to keep them"
    return ("height and width are not what the block's stride gives: conv1 applies the block's stride with "
            "padding 1, and conv2 keeps the size (stride 1, padding 1)")


def block_case_problem(args, input_shape, problem):
    """A seed case's failure, as both the self-check and the grader say it."""
    return f"{block_call(args)} on a {tuple(input_shape)} batch: {problem}."


# The demo's tensors: the block that makes each, and the shape it must have.
DEMO_OUTPUTS = {"output_tensor_1": ("block_same_dim", [4, 64, 32, 32]),
                "output_tensor_2": ("block_change_dim", [4, 128, 16, 16])}


def demo_output_problem(name, got):
    """Why one of the demo's outputs has the wrong shape (None when it is right)."""
    block, want = DEMO_OUTPUTS[name]
    got = list(got)
    if got == want:
        return None
    if got[:2] == want[:2] and name == "output_tensor_2":
        hint = " block_change_dim needs the stride that halves height and width."
    elif got[0] == want[0] and got[1] != want[1]:
        hint = f" {block} must give {want[1]} channels."
    else:
        hint = ""
    return f"{name} has the shape {tuple(got)}, not {tuple(want)}.{hint}"


MAIN_PATH_GENERIC = "conv1 -> BatchNorm -> ReLU -> conv2 -> BatchNorm does not compute what it should"


def main_path_layers_problem(main, cin, cout, stride):
    """What is wrong with the main path's four layers (a dict: conv1, bn1, conv2, bn2 -> described
    layer or None), or None when each is built as the exercise asks."""
    missing = [k for k, v in main.items() if v is None]
    if missing:
        return (f"the block has no {', '.join(missing)} (the main path's layers keep the scaffold's names, or are "
                "built in their order: conv, BatchNorm, conv, BatchNorm)")
    for name, want_in, want_stride in (("conv1", cin, stride), ("conv2", cout, 1)):
        conv = main[name]
        if conv.get("type") != "Conv2d":
            return f"{name} must be an nn.Conv2d"
        if (conv["in"], conv["out"]) != (want_in, cout):
            return f"{name} must go from {'in_channels' if name == 'conv1' else 'out_channels'} to out_channels"
        if list(conv["kernel"]) != [3, 3]:
            return f"{name} must be a 3x3 convolution (kernel_size=3)"
        if list(conv["stride"]) != [want_stride, want_stride]:
            return ("conv1 must apply the block's stride (stride=stride)" if name == "conv1" else
                    "conv2 must use stride 1: only conv1 applies the block's stride")
        if conv.get("dilation") not in (None, [1, 1], (1, 1)):
            return f"{name} must not be dilated (dilation=1)"
        if conv["padding"] not in ([1, 1], (1, 1), "same"):
            return f"{name} needs padding=1, so that a 3x3 kernel keeps the size at stride 1"
        if conv["bias"]:
            return f"{name} must have no bias (bias=False): BatchNorm follows it"
    for name in ("bn1", "bn2"):
        bn = main[name]
        if bn.get("type") != "BatchNorm2d":
            return f"{name} must be an nn.BatchNorm2d (normalising each channel over the batch)"
        if bn.get("features") not in (None, cout):
            return f"{name} must normalise its conv's output, which has out_channels channels"
        if bn.get("affine") is False:
            return f"{name} must learn its scale and shift (affine=True, the default)"
        if bn.get("track_running_stats") is False:
            return f"{name} must keep running statistics (track_running_stats=True, the default) for eval mode"
    return None


def main_path_problem_text(call, mode, problem):
    return f"Main path of {call} in {mode} mode: {problem}."


def identity_problem(args, layer_types):
    """A stride-1, equal-channel block whose shortcut applies layers to x."""
    return (f"{block_call(args)}: with stride 1 and equal channels x already has the shape of the main path's "
            f"output, so the shortcut must be x itself; yours applies {', '.join(layer_types) or 'a layer'} to it.")


SHORTCUT_IS_X = "the shortcut is x itself, which does not have the main path's shape here: project it"


def projection_problem(leaves, stride):
    """What is wrong with a projection shortcut, from its layers (described, in order)."""
    convs = [d for d in leaves if d.get("type") == "Conv2d"]
    norms = [d for d in leaves if d.get("type") == "BatchNorm2d"]
    if not convs:
        return "the shortcut has no convolution, so x cannot be projected to the new shape"
    conv = convs[0]
    if len(convs) > 1:
        return "the shortcut should hold a single 1x1 convolution"
    if list(conv["kernel"]) != [1, 1]:
        return f"the projection must be a 1x1 convolution (kernel_size=1); yours is {conv_text(conv)}"
    if list(conv["stride"]) != [stride, stride]:
        return "the projection convolution must use the block's stride (stride=stride)"
    if conv["padding"] not in ([0, 0], (0, 0), "valid"):
        return "the projection convolution must not pad (padding=0, the default): a 1x1 kernel needs none"
    if conv["bias"]:
        return "the projection convolution must have no bias (bias=False): BatchNorm follows it"
    if not norms:
        return "the projection convolution must be followed by BatchNorm2d(out_channels)"
    if norms[0].get("features") is not None and norms[0].get("features") != conv.get("out"):
        return "the projection's BatchNorm2d must normalise the convolution's out_channels channels"
    return "the shortcut does not compute BatchNorm(1x1 convolution(x))"


def projection_case_problem(label, args, problem, mode):
    return f"When {label} ({block_call(args)}): {problem} ({mode} mode)."


def join_problem(args, kind, mode="train"):
    """How the shortcut joins the main path, when it does not as relu(main + shortcut)."""
    why = {
        "never added": "the shortcut's output is never added to the main path (out += self.shortcut(x)).",
        "no final relu": f"the block must end with a ReLU applied after the addition ({mode} mode).",
        "relu before add": ("the ReLU is applied before the addition; it belongs after it: "
                            "out = relu(main(x) + shortcut(x))."),
        "other": ("the output is not relu(main path + shortcut): add the shortcut to the main path's output, then "
                  f"apply the final ReLU ({mode} mode)."),
    }[kind]
    return f"{block_call(args)}: {why}"


def resnet_conv1_problem(conv):
    """What is wrong with resnet_model.conv1 (described), or None."""
    if conv.get("type") != "Conv2d":
        return "resnet_model.conv1 must be an nn.Conv2d"
    if conv["in"] != 1:
        return f"resnet_model.conv1 takes {conv['in']} input channels; chest X-rays have 1"
    if (conv["out"], list(conv["kernel"]), list(conv["stride"]), conv["padding"] if isinstance(conv["padding"], str)
            else list(conv["padding"]), conv["bias"]) != (64, [7, 7], [2, 2], [3, 3], False):
        return ("apart from its input channels, conv1 must stay as ResNet18 built it (64 filters of 7x7, "
                f"stride 2, padding 3, no bias); yours is {conv_text(conv)}")
    return None


def resnet_fc_problem(fc):
    """What is wrong with resnet_model.fc (described), or None."""
    if fc.get("type") != "Linear":
        return "resnet_model.fc must be an nn.Linear layer"
    if fc["out"] == 1000:
        return "resnet_model.fc still has ImageNet's 1000 outputs: replace it with a layer for 2 classes"
    if fc["out"] != 2:
        return f"resnet_model.fc gives {fc['out']} output{'s' if fc['out'] != 1 else ''}; PneumoniaMNIST has 2 classes"
    if fc["in"] != 512:
        return "resnet_model.fc must take the 512 features of ResNet18's last stage (resnet_model.fc.in_features)"
    if not fc["bias"]:
        return "resnet_model.fc has no bias: nn.Linear(num_ftrs, 2) keeps its bias (bias=True, the default)"
    return None


# The ResNet cell's batch and output: the shape each must have, and what that shape means.
RESNET_BATCH = {"images": ([4, 1, 28, 28], "a batch of 4 one-channel 28x28 images"),
                "output": ([4, 2], "two scores for each of the 4 images")}


def resnet_batch_problem(name, got):
    """Why images or output has the wrong shape (None when it is right)."""
    want, what = RESNET_BATCH[name]
    got = list(got)
    if got == want:
        return None
    if len(got) == len(want) and got[0] != want[0] and got[1:] == want[1:]:
        hint = ": check batch_size"
    elif name == "images" and len(got) == 4 and got[1] != 1:
        hint = ": the images have one channel (leave the data as the loader gives it)"
    elif name == "output" and len(got) == 2 and got[1] != 2:
        hint = ": fc must give 2 outputs"
    else:
        hint = ""
    return f"{name} has the shape {tuple(got)}; it should be {tuple(want)}, {what}{hint}."


# What a device mistake's exception says (PyTorch's own words, on a GPU machine or in the run where
# CUDA is simulated): a name missing because of one is the device item's business, not another's.
DEVICE_WORDS = re.compile(r"device|cuda|CUDA|NVIDIA|meta|Meta|torch\.cuda\.|FloatTensor\) and weight type|"
                          r"same device|invalid device ordinal", re.IGNORECASE)


def name_missing(message, why):
    """The notebook's class or model is missing (message: Python's NameError text, e.g.
    "resnet_model is not defined"), and the earlier failure that explains it."""
    return f"{message}" + (f": {why}." if why else ".")


def not_defined(name, why):
    """A variable a check needs is missing, and the earlier failure that explains it."""
    return f"{name} is not defined when the checks run" + (f": {why}." if why else ".")


def world_words(world, gpu, simulated=False):
    """Which of the grader's two runs of the notebook a device message is about."""
    words = "on this machine" if world == "real" else f"in the run with CUDA {'available' if gpu else 'unavailable'}"
    return words + (f" (GPU {'simulated' if simulated else 'real'})" if gpu else "")


PLACES = {"cpu": "the CPU", "cuda": "the GPU", "meta": "the GPU"}


def device_choice_problem(where, got, want):
    """device is not the one torch.cuda.is_available() calls for (where: "on this machine", ...)."""
    return (f"{where[:1].upper() + where[1:]}, device is {got!r} but should be {want!r}: device must be the GPU "
            "exactly when torch.cuda.is_available() says there is one.")


def placement_problem(where, what, found, device, fix):
    """Something (the model, the batch, the output) is not where device says (found: device types)."""
    shown = " and ".join(sorted({PLACES.get(f, f) for f in found if f}))
    on = f"not on device ({PLACES.get(device, device)})" if device else "and device itself is not defined"
    return f"{where[:1].upper() + where[1:]}, {what} is on {shown}, {on}: {fix}."


# What must be on device in the ResNet cell, and how to put it there.
DEVICE_FIXES = {"the model": "call resnet_model.to(device)", "the batch of images": "images = images.to(device)",
                "the output": "compute it with the model and batch on device"}


def not_a_tensor(what, type_name):
    """The student's code returned something that is not a tensor where a tensor is due."""
    return f"{what} returned {type_name}, not a tensor."


def raised(what, error_text):
    """A check could not look because the student's code raised (error_text: the type and message)."""
    return f"{what} raised {error_text}."

"""Every sentence a student reads from Notebook 11's graders, as plain functions over plain data.

The hidden graders call these functions, and so do the notebook's visible self-checks:
`autograder release` copies this module's source, then selfcheck.py's, into the release's helper
cell (autograder/inlineselfchecks.py), so a self-check words a mistake as the grader does. Hence
only the standard library here, and no `from __future__` import (the code runs inside a function).

A hidden case is named by its description only ("hidden case: a one-row skip ..."): no message
about it shows its sizes or channel counts, nor the student's exception message or line (they can
carry them).
"""

import builtins
import re

KINDS = {"double_conv": "DoubleConv", "down": "Down", "up": "Up", "unet": "UNet"}


# The visible cases: the self-checks try these, and the graders try them too, with seeded values.
DOUBLE_CONV_CASES = {"1-to-16": ((1, 16), [2, 1, 20, 24]), "8-to-5": ((8, 5), [1, 8, 7, 9])}
DOWN_CASES = {"16-to-32": ((16, 32), [2, 16, 32, 40]), "4-to-6-odd": ((4, 6), [1, 4, 9, 7])}
UP_CASES = {  # name -> ((in, out), x, skip)
    "even": ((32, 16), [2, 32, 8, 10], [2, 16, 16, 20]),
    "odd": ((16, 8), [2, 16, 5, 6], [2, 8, 11, 13]),
    "centred": ((8, 4), [1, 8, 4, 3], [1, 4, 10, 9]),
}
UNET_CASES = {"64x64": ((1, 3, 16), [2, 1, 64, 64]), "63x61": ((1, 3, 16), [1, 1, 63, 61])}


def shape_text(shape) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")"


def case_label(kind: str, args, inputs: dict, hidden_label: str | None) -> str:
    """How a check names its case: the call and the input shapes, or for a hidden case only what
    it is about."""
    name = KINDS[kind]
    if hidden_label:
        return f"{name}, hidden case ({hidden_label})"
    if kind == "unet":
        c, n, b = args
        call = f"UNet(in_channels={c}, num_classes={n}, base={b})"
    else:
        call = f"{name}({', '.join(str(a) for a in args)})"
    if kind == "up":
        return f"{call} on x of shape {shape_text(inputs['x'])} and a skip of shape {shape_text(inputs['skip'])}"
    return f"{call} on a batch of shape {shape_text(inputs['x'])}"


# ---- DoubleConv ---------------------------------------------------------------------------------------

DOUBLE_CONV_ORDER = ("should hold a 3x3 convolution, a BatchNorm2d and a ReLU, in that order, twice "
                     "(in self.double_conv)")


def conv_words(layer: dict) -> str:
    kernel = layer.get("kernel") or ["?", "?"]
    padding = layer.get("padding")
    pad = padding if isinstance(padding, str) else (padding[0] if padding and len(set(padding)) == 1 else padding)
    return f"{kernel[0]}x{kernel[1]} with padding {pad}"


def double_conv_layers_problem(layers: list[dict], cin: int, cout: int, hidden: bool, what: str = "DoubleConv") -> str | None:
    """What is wrong with a DoubleConv's layers, in the exercise's words (None: nothing seen)."""
    kinds = [layer.get("type") for layer in layers if layer.get("type") in ("Conv2d", "BatchNorm2d", "ReLU")]
    if kinds != ["Conv2d", "BatchNorm2d", "ReLU"] * 2:
        return f"{what} {DOUBLE_CONV_ORDER}; it holds {', '.join(kinds) or 'none of them'}."
    convs = [layer for layer in layers if layer.get("type") == "Conv2d"]
    norms = [layer for layer in layers if layer.get("type") == "BatchNorm2d"]
    for place, conv in zip(("first", "second"), convs):
        if conv.get("kernel") != [3, 3] or conv.get("padding") not in ([1, 1], "same") or conv.get("stride") != [1, 1]:
            return (f"{what}'s {place} convolution is {conv_words(conv)}"
                    + (f" and stride {conv.get('stride')[0]}" if conv.get("stride") not in ([1, 1], None) else "")
                    + ": both should be 3x3 with padding 1 (and stride 1), so that the height and width stay the same.")
    wants = [(cin, cout), (cout, cout)]
    for place, conv, (a, b) in zip(("first", "second"), convs, wants):
        if (conv.get("in"), conv.get("out")) != (a, b):
            rule = ("from in_channels to out_channels" if place == "first" else "from out_channels to out_channels")
            numbers = "" if hidden else f" ({a} -> {b}; it goes {conv.get('in')} -> {conv.get('out')})"
            return f"{what}'s {place} convolution should go {rule}{numbers}."
    for place, norm in zip(("first", "second"), norms):
        if norm.get("features") != cout:
            numbers = "" if hidden else f" ({cout}; it has {norm.get('features')})"
            return f"{what}'s {place} BatchNorm2d should normalise out_channels channels{numbers}."
    return None


# ---- Down ------------------------------------------------------------------------------------------------

DOWN_RULE = "a Down step max-pools with a 2x2 window (nn.MaxPool2d(2)) first, then applies DoubleConv(in_channels, out_channels)"
DOWN_VARIANTS = {
    "pool after the DoubleConv": "it pools after the DoubleConv; " + DOWN_RULE,
    "average pooling": "it takes the average of each 2x2 window; " + DOWN_RULE + " (the largest value of each window)",
}


def down_layers_problem(layers: list[dict]) -> str | None:
    pools = [layer for layer in layers if layer.get("type") == "MaxPool2d"]
    if not pools:
        return f"Down has no nn.MaxPool2d: {DOWN_RULE}."
    if pools[0].get("kernel") != [2, 2] or pools[0].get("stride") not in ([2, 2], None):
        return f"Down's max-pool has window {pools[0].get('kernel')}: {DOWN_RULE}, which halves the height and width."
    return None


# ---- Up ----------------------------------------------------------------------------------------------------

UP_RULE = ("an Up step upsamples x with self.up, pads it with F.pad to the skip's height and width, joins "
           "[skip, x] along the channel axis (dim=1) and applies self.conv")
UP_VARIANTS = {
    "skip second": "the skip connection must come first in the concatenation: torch.cat([skip, x], dim=1)",
    "extra on the left and top": ("when a size differs by an odd number, the odd pixel of padding goes on the right "
                                  "or the bottom: half of each difference, rounded down, on the left and the top"),
    "height and width swapped": ("F.pad's list is [left, right, top, bottom]: the width's padding (diff_x) comes "
                                 "first, then the height's (diff_y)"),
    "all on the right and bottom": ("the upsampled map must be centred in its padding: half of each difference, "
                                    "rounded down, on the left and the top, the rest on the right and the bottom"),
}


def up_layers_problem(layers: list[dict], cin: int, hidden: bool) -> str | None:
    tconvs = [layer for layer in layers if layer.get("type") == "ConvTranspose2d"]
    if len(tconvs) != 1:
        return f"Up should upsample with one nn.ConvTranspose2d (self.up); it holds {len(tconvs)}."
    t = tconvs[0]
    if (t.get("in"), t.get("out")) != (cin, cin // 2):
        numbers = "" if hidden else f" ({cin} -> {cin // 2}; it goes {t.get('in')} -> {t.get('out')})"
        return ("Up's transposed convolution should halve the channels, in_channels -> in_channels // 2"
                f"{numbers}, so that the upsampled map has as many channels as the skip.")
    if t.get("kernel") != [2, 2] or t.get("stride") != [2, 2] or t.get("padding") not in ([0, 0], None):
        return ("Up's transposed convolution should have kernel size 2 and stride 2 (and no padding), to double "
                "the height and width exactly.")
    return None


def up_error_hint(error: dict) -> str:
    text = f"{error.get('type', '')}: {error.get('message', '')}"
    if re.search(r"Sizes of tensors must match", text):
        return (" The upsampled map and the skip must have the same height and width before they are joined: pad "
                "the upsampled map with F.pad to the skip's size, and join on the channel axis (dim=1).")
    if re.search(r"expected input.*to have \d+ channels|channels", text):
        return " The map going into self.conv should hold the skip's channels and the upsampled map's, joined on dim=1."
    return ""


# ---- UNet --------------------------------------------------------------------------------------------------

UNET_PARTS_RULE = {"inc": "DoubleConv(in_channels, base)", "down1": "Down(base, base * 2)",
                   "down2": "Down(base * 2, base * 4)", "down3": "Down(base * 4, base * 8)",
                   "up1": "Up(base * 8, base * 4)", "up2": "Up(base * 4, base * 2)", "up3": "Up(base * 2, base)",
                   "outc": "nn.Conv2d(base, num_classes, kernel_size=1)"}
UNET_WIRING = ("UNet's forward does not put its parts together as a U-Net does: x1 = inc(x), x2 = down1(x1), "
               "x3 = down2(x2), x4 = down3(x3), then up1 gets x4 with the skip x3, up2 the skip x2, up3 the skip x1, "
               "and outc gives the class scores")


def outc_problem(outc: dict | None, base: int, classes: int, hidden: bool) -> str | None:
    if not outc or outc.get("type") != "Conv2d":
        return f"UNet's outc should be {UNET_PARTS_RULE['outc']}."
    if outc.get("kernel") != [1, 1]:
        return ("UNet's last layer (outc) is a {0}x{1} convolution; it should be 1x1, so that each pixel's class "
                "scores come from that pixel's own features.").format(*(outc.get("kernel") or ["?", "?"]))
    if (outc.get("in"), outc.get("out")) != (base, classes):
        numbers = "" if hidden else f" ({base} -> {classes}; it goes {outc.get('in')} -> {outc.get('out')})"
        return f"UNet's outc should go from base channels to num_classes{numbers}."
    return None


# ---- device ------------------------------------------------------------------------------------------------

DEVICE_WORDS = re.compile(r"device|cuda|CUDA|NVIDIA|meta|Meta|torch\.cuda\.|FloatTensor\) and weight type|"
                          r"same device|invalid device ordinal", re.IGNORECASE)
PLACES = {"cpu": "the CPU", "cuda": "the GPU", "meta": "the GPU"}
DEVICE_FIXES = {"the model": "model = UNet(...).to(device)", "the batch of images": "images = ....to(device)",
                "the batch of masks": "masks = ....to(device)",
                "the logits": "compute them with the model and the batch on device"}


def world_words(world: str, gpu: bool, simulated: bool = False) -> str:
    words = "on this machine" if world == "real" else f"in the run with CUDA {'available' if gpu else 'unavailable'}"
    return words + (f" (GPU {'simulated' if simulated else 'real'})" if gpu else "")


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def device_choice_problem(where: str, got, want: str) -> str:
    return (f"{sentence(where)}, device is {got!r} but should be {want!r}: device must be the GPU exactly when "
            "torch.cuda.is_available() says there is one.")


def placement_problem(where: str, what: str, found: set, device, fix: str) -> str:
    shown = " and ".join(sorted({PLACES.get(f, f) for f in found if f}))
    on = f"not on device ({PLACES.get(device, device)})" if device else "and device itself is not defined"
    verb = "are" if what == "the logits" else "is"
    return f"{sentence(where)}, {what} {verb} on {shown}, {on}: {fix}."


# ---- what every step's check says -----------------------------------------------------------------------

# Exception types a hidden case may name: Python's own. Any other name is the notebook's choice.
BUILTIN_ERRORS = frozenset(name for name, value in vars(builtins).items()
                           if isinstance(value, type) and issubclass(value, BaseException)) | {"CellTimeout"}


def your_line(error: dict | None) -> str:
    if not error or not error.get("code"):
        return ""
    return f" (line {error['line']} of your cell: `{error['code']}`)"


def describe_error(error: dict, hidden: bool = False) -> str:
    """The student's exception; for a hidden case only its type, and only a built-in one."""
    kind = error.get("type") if isinstance(error.get("type"), str) else "an error"
    if kind == "NotATensor":
        found = re.fullmatch(r"returned (\w+), not a tensor", str(error.get("message", "")))
        return f"no tensor (it returned {found.group(1) if found and not hidden else 'something else'})"
    if hidden:
        return kind if kind in BUILTIN_ERRORS else "an exception"
    text = kind + (f": {error['message']}" if error.get("message") else "")
    return text + your_line(error)


def name_missing(message: str, why: str | None) -> str:
    """A class the check builds is missing (message: Python's, "Up is not defined"), and the earlier
    failure that explains it."""
    return message + (f": {why}." if why else ".")


def not_defined(name: str, why: str | None) -> str:
    return f"{name} is not defined when the checks run" + (f": {why}." if why else ".")


def stopped_with(label: str, error: dict) -> str:
    """An earlier cell's failure (label: "cell `up`"), as the checks cite it."""
    line = f" at line {error['line']}: `{error['code']}`" if error.get("code") else ""
    message = f" ({error['message'][:160]})" if error.get("message") else ""
    return f"{label} stopped with {error['type']}{line}{message}"


def build_raised(label: str, error_words: str) -> str:
    return f"{label}: building it raised {error_words}."


def case_problem(label: str, problem: str) -> str:
    """A problem found in a case (problem: a sentence, with its full stop)."""
    return f"{label}: {problem}"


def step_raised(label: str, error_words: str, hint: str = "") -> str:
    return f"{label} raised {error_words}.{hint}"


def no_tensor(label: str) -> str:
    return f"{label} did not return a tensor."


def variant_problem(kind: str, label: str, variant: str) -> str:
    """A common mistake recognised by what it computes (kind: "up" or "down")."""
    return f"{label}: {(UP_VARIANTS if kind == 'up' else DOWN_VARIANTS)[variant]}."


def not_finite(label: str) -> str:
    return f"{label}: its output holds NaN or infinite values."


def not_live(label: str) -> str:
    return f"{label}: its output does not depend on its input."


STEP_RULES = {"double_conv": "(3x3 convolution -> BatchNorm2d -> ReLU) twice", "down": DOWN_RULE, "up": UP_RULE}


def wrong_values(kind: str, label: str) -> str:
    return f"{label} does not compute what it should: {STEP_RULES[kind]}."


def expected_shape(kind: str, args, inputs: dict) -> list:
    x = inputs["x"]
    if kind == "double_conv":
        return [x[0], args[1], x[2], x[3]]
    if kind == "down":
        return [x[0], args[1], x[2] // 2, x[3] // 2]
    if kind == "up":
        skip = inputs["skip"]
        return [skip[0], args[1], skip[2], skip[3]]
    return [x[0], args[1], x[2], x[3]]


def shape_problem(kind: str, args, inputs: dict, found, label: str, hidden: bool) -> str | None:
    """Why an output's shape (found) is wrong, or None."""
    want = expected_shape(kind, args, inputs)
    if list(found) == want:
        return None
    rule = {"double_conv": "out_channels channels at the input's height and width",
            "down": "out_channels channels at half the input's height and width (rounded down)",
            "up": "out_channels channels at the skip's height and width",
            "unet": "num_classes scores for every pixel, at the input's height and width"}[kind]
    if hidden:
        return f"{label} gave an output of the wrong shape: it should have {rule}."
    return f"{label} gave an output of shape {shape_text(found)} instead of {shape_text(want)}: {rule}."


# ---- what the UNet's checks say ---------------------------------------------------------------------------

def unet_missing_parts(missing: list) -> str:
    return (f"UNet has no {', '.join(missing)}: it should hold inc, down1, down2, down3, up1, up2, up3 and outc, "
            "under these names.")


def unet_part_problem(name: str) -> str:
    return f"UNet's {name} should be {UNET_PARTS_RULE[name]}."


def unet_raised(label: str, error_words: str) -> str:
    return (f"{label} raised {error_words}, though its parts, run one after the other as a U-Net runs them, give "
            f"an output. {UNET_WIRING}.")


def unet_wiring(label: str) -> str:
    return f"{label}: {UNET_WIRING}."


LOGITS = [8, 3, 64, 64]
LOGITS_NOT_A_TENSOR = "logits is not a tensor: it should be model(images), the U-Net's class scores for the batch."


def logits_shape_problem(shape, images) -> str | None:
    if list(shape) == LOGITS:
        return None
    return (f"logits has shape {shape_text(shape)}; for the batch of 8 one-channel 64x64 images "
            + (f"(images has shape {shape_text(images)}) " if images and list(images) != [8, 1, 64, 64] else "")
            + "the U-Net should give (8, 3, 64, 64): 3 class scores for every pixel of every image.")


# ---- what the device checks say ---------------------------------------------------------------------------

def device_not_defined(where: str, why: str | None) -> str:
    return f"device is not defined {where}: {why or 'the setup cell did not define it'}."


def device_index_problem(where: str, index) -> str:
    return (f"{sentence(where)}, device is cuda:{index}, a GPU that a one-GPU machine does not have: use "
            "torch.device('cuda') (the current GPU) or cuda:0.")


def placement_note(problem: str, stopped: str | None) -> str:
    return problem + (f" Note: {stopped}." if stopped else "")


def missing_on_device(what: str, where: str, why: str | None) -> str:
    """The model, the batch or the logits are missing in a run."""
    return (f"{sentence(what)} {'are' if what == 'the logits' else 'is'} not defined {where}: "
            + (why or "the cell that makes it did not finish") + ".")

"""Notebook 11's blank sites, for the report: what each blank hides, and the checks and messages
that tell a student's answer there right or wrong (autograder/report.py explains the fields).

The patterns are the graders' own sentences (graders/messages.py). A site the checks cannot tell
apart from its neighbours says why (``untold``) rather than guess.
"""

from autograder.report import Site

DOUBLE_CONV = (r"^test_double_conv_(?:seed|hidden)_cases\[",)
DOWN = (r"^test_down_(?:seed|hidden)_cases\[",)
UP = (r"^test_up_sizes_that_double_exactly$", r"^test_up_skip_one_pixel_larger$", r"^test_up_padding_centred$",
      r"^test_up_hidden_cases\[")
UP_ODD = (r"^test_up_skip_one_pixel_larger$", r"^test_up_padding_centred$", r"^test_up_hidden_cases\[")
UNET = (r"^test_unet_seeded_weights\[", r"^test_unet_hidden_cases\[")
PARTS_RIGHT = DOUBLE_CONV + DOWN + UP  # a UNet check tells its own wiring apart only when its parts are right

SITES: list[Site] = [
    Site("setup", ("torch.cuda.is_available()",), "device = cuda if torch.cuda.is_available()",
         checks=(r"^test_device_placement_choice\[",),
         wrong=(r"device is '\w+' but should be", r"^device is not defined"),
         evidence='the device choice checks, both runs; "device is ... but should be ..."'),
    Site("double_conv", ("in_channels", "out_channels", "1"), "first convolution: in -> out, padding 1",
         checks=DOUBLE_CONV,
         wrong=(r"DoubleConv's first convolution should go from in_channels", r"DoubleConv's first convolution is"),
         right=(r"DoubleConv's second convolution", r"DoubleConv's \w+ BatchNorm2d"),
         evidence="the DoubleConv checks; their messages about the first convolution"),
    Site("double_conv", ("out_channels",), "first BatchNorm2d(out_channels)",
         checks=DOUBLE_CONV, wrong=(r"DoubleConv's first BatchNorm2d should normalise",),
         right=(r"DoubleConv's second BatchNorm2d",),
         evidence='the DoubleConv checks; "DoubleConv\'s first BatchNorm2d should normalise ..."'),
    Site("double_conv", ("out_channels",), "second convolution: out -> out",
         checks=DOUBLE_CONV,
         wrong=(r"DoubleConv's second convolution should go from out_channels", r"DoubleConv's second convolution is"),
         right=(r"DoubleConv's \w+ BatchNorm2d",),
         evidence="the DoubleConv checks; their messages about the second convolution"),
    Site("down", ("2",), "nn.MaxPool2d(2)",
         checks=DOWN, wrong=(r"Down has no nn\.MaxPool2d", r"Down's max-pool has window", r"it pools after the DoubleConv",
                             r"it takes the average of each 2x2 window"),
         evidence='the Down checks; "Down has no nn.MaxPool2d" and the pooling messages'),
    Site("down", ("in_channels", "out_channels"), "DoubleConv(in_channels, out_channels) after the pool",
         untold="a Down that pools right but builds its DoubleConv with other channels fails with a channel error "
                "or a value mismatch that no message ties to this site alone"),
    Site("up", ("in_channels // 2", "2"), "ConvTranspose2d: in -> in // 2, kernel 2, stride 2",
         checks=UP, wrong=(r"Up's transposed convolution should", r"Up should upsample with one nn\.ConvTranspose2d"),
         evidence="the Up checks; their messages about the transposed convolution"),
    Site("up", ("diff_x // 2", "diff_y // 2"), "F.pad centred: [diff_x // 2, ..., diff_y // 2, ...]",
         checks=UP_ODD,
         wrong=(r"the odd pixel of padding goes on the right or the bottom", r"F\.pad's list is \[left, right, top, bottom\]",
                r"the upsampled map must be centred in its padding", r"must have the same height and width before "
                                                                      r"they are joined"),
         right=(r"the skip connection must come first",),
         evidence="the Up checks where the sizes differ (odd and centred cases); their padding messages"),
    Site("up", ("skip", "x", "1"), "torch.cat([skip, x], dim=1)",
         checks=UP, wrong=(r"the skip connection must come first in the concatenation",
                           r"should hold the skip's channels and the upsampled map's, joined on dim=1"),
         right=(r"the odd pixel of padding goes on the right", r"the upsampled map must be centred"),
         evidence='the Up checks; "the skip connection must come first" and "joined on dim=1"'),
    Site("unet", ("base * 4", "base * 8"), "down3 = Down(base * 4, base * 8)",
         checks=UNET, wrong=(r"UNet's down3 should be",), judged_if=PARTS_RIGHT,
         evidence='the UNet value checks; "UNet\'s down3 should be ..." (a pass counts only with DoubleConv, Down '
                  "and Up right)"),
    Site("unet", ("num_classes", "1"), "outc = Conv2d(base, num_classes, kernel_size=1)",
         checks=UNET, wrong=(r"UNet's last layer \(outc\) is a", r"UNet's outc should"),
         judged_if=PARTS_RIGHT,
         evidence='the UNet value checks; "UNet\'s last layer (outc) is a KxK convolution" and "outc should ..."'),
    Site("unet", ("x3",), "up1 gets the skip x3",
         checks=UNET, wrong=(r"UNet's forward does not put its parts together as a U-Net does",),
         judged_if=PARTS_RIGHT,
         evidence="the UNet value checks; the wiring message, which names no one skip (this row and the next "
                  "count the same students)"),
    Site("unet", ("x1",), "up3 gets the skip x1",
         checks=UNET, wrong=(r"UNet's forward does not put its parts together as a U-Net does",),
         judged_if=PARTS_RIGHT,
         evidence="the UNet value checks; the wiring message (see the row above)"),
    Site("unet_demo", ("device",), "model = UNet(...).to(device)",
         checks=(r"^test_device_placement_model\[",),
         wrong=(r"the model is on [^,]+, not on device",),
         evidence='the device model checks, both runs; "the model is on ..., not on device"'),
    Site("unet_demo", ("device",), "images = images.to(device)",
         checks=(r"^test_device_placement_batch\[",),
         wrong=(r"the batch of images is on [^,]+, not on device",),
         evidence='the device batch checks, both runs; "the batch of images is on ..., not on device"'),
    Site("train_unet", ("batch_logits", "batch_masks"), "loss = criterion(batch_logits, batch_masks)",
         untold="the training loop is not graded: the loss going down is shown in the notebook, not checked"),
    Site("train_unet", ("backward",), "loss.backward()",
         untold="the training loop is not graded (see above)"),
    Site("train_unet", ("item",), "loss.item()",
         untold="the training loop is not graded (see above)"),
]

"""Reference U-Net for Notebook 11, in plain PyTorch, for the graders.

The same modules, attribute names and forward order as the notebook's solution, so a
student's ``model.state_dict()`` loads into ``UNet`` here (``strict=True``) and both compute
the same logits. Conventions the exercise fixes:

* ``DoubleConv``: (3x3 conv, padding 1, no bias -> BatchNorm2d -> ReLU) twice, in
  ``self.double_conv`` (an ``nn.Sequential``); height and width unchanged.
* ``Down``: ``nn.MaxPool2d(2)`` then ``DoubleConv``, in ``self.pool_conv``.
* ``Up.forward(x, skip)``: ``self.up`` = ConvTranspose2d(in, in // 2, kernel 2, stride 2);
  the upsampled map is zero-padded to the skip's size with ``F.pad`` (half the difference,
  rounded down, on the left/top, the rest on the right/bottom); then
  ``torch.cat([skip, x], dim=1)`` (skip first, channel axis) and ``self.conv`` = DoubleConv.
* ``UNet(in_channels=1, num_classes=3, base=16)``: ``inc``, ``down1..down3``, ``up1..up3``,
  ``outc`` = Conv2d(base, num_classes, kernel_size=1); output (N, num_classes, H, W) for any
  H, W >= 8 (odd sizes included).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class DoubleConv(nn.Module):
    """(3x3 convolution -> batch norm -> ReLU) twice; keeps height and width."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class Down(nn.Module):
    """One encoder step: halve height and width (max-pool 2), then DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool_conv(x)


def pad_to(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """x zero-padded to skip's height and width, centred (the odd pixel right/bottom)."""
    diff_y = skip.size(2) - x.size(2)
    diff_x = skip.size(3) - x.size(3)
    return F.pad(x, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])


class Up(nn.Module):
    """One decoder step: upsample x, pad it to the skip's size, concatenate [skip, x], DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = pad_to(self.up(x), skip)
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """A three-level U-Net: per-pixel class logits (N, num_classes, H, W)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 3, base: int = 16) -> None:
        super().__init__()
        self.inc = DoubleConv(in_channels, base)
        self.down1 = Down(base, base * 2)
        self.down2 = Down(base * 2, base * 4)
        self.down3 = Down(base * 4, base * 8)
        self.up1 = Up(base * 8, base * 4)
        self.up2 = Up(base * 4, base * 2)
        self.up3 = Up(base * 2, base)
        self.outc = nn.Conv2d(base, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x = self.up1(x4, x3)
        x = self.up2(x, x2)
        x = self.up3(x, x1)
        return self.outc(x)

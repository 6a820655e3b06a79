"""Submissions that try to earn points they did not: none may."""

from tests.submissions.case import Case, Replace

ZEROS_BLOCK = '''class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x):
        n, _, h, w = x.shape
        return torch.zeros(n, self.out_channels, (h - 1) // self.stride + 1, (w - 1) // self.stride + 1)
'''

CASES = [
    Case("hostile", "hostile_zeros_of_the_right_shape_score_zero_for_blocks",
         (Replace("residual_block", ZEROS_BLOCK),),
         expect={"residual_block_shapes": 0.0, "shortcut_projection": 0.0},
         why="a block that returns zeros of the right shape and has no layers"),
]

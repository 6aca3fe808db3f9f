"""CSPNeXtPAFPN, RTMDet's neck (mmdet 3.3.0's ``CSPNeXtPAFPN``)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..backbones.cspnext import CSPLayer
from ..layers import ConvBN


class CSPNeXtPAFPN(nn.Module):
    """Path-aggregation FPN with CSPNeXt blocks: maps (N, in_channels[i], H_i, W_i) -> tuple of
    (N, out_channels, H_i, W_i).

    Top-down: ``reduce_convs`` (1x1 to the next-lower width), nearest x2 upsample, concat,
    ``top_down_blocks`` (CSPLayer without shortcut). Bottom-up: ``downsamples`` (3x3 stride 2),
    concat, ``bottom_up_blocks``. Then ``out_convs`` (3x3) per level.
    """

    def __init__(self, in_channels, out_channels, num_csp_blocks=3, expand_ratio=0.5, act="silu"):
        super().__init__()
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        chans, n = self.in_channels, len(in_channels)

        def csp(cin, cout):
            return CSPLayer(cin, cout, num_csp_blocks, False, expand_ratio, act=act)

        self.reduce_convs = nn.ModuleList(ConvBN(chans[i], chans[i - 1], 1, act=act)
                                          for i in range(n - 1, 0, -1))
        self.top_down_blocks = nn.ModuleList(csp(2 * chans[i - 1], chans[i - 1])
                                             for i in range(n - 1, 0, -1))
        self.downsamples = nn.ModuleList(ConvBN(chans[i], chans[i], 3, 2, act=act)
                                         for i in range(n - 1))
        self.bottom_up_blocks = nn.ModuleList(csp(2 * chans[i], chans[i + 1]) for i in range(n - 1))
        self.out_convs = nn.ModuleList(ConvBN(c, out_channels, 3, act=act) for c in chans)

    def forward(self, feats):
        n = len(self.in_channels)
        inner = [feats[-1]]
        for j, i in enumerate(range(n - 1, 0, -1)):
            high = self.reduce_convs[j](inner[0])
            inner[0] = high
            up = F.interpolate(high, scale_factor=2.0, mode="nearest")
            inner.insert(0, self.top_down_blocks[j](torch.cat([up, feats[i - 1]], 1)))
        outs = [inner[0]]
        for i in range(n - 1):
            down = self.downsamples[i](outs[-1])
            outs.append(self.bottom_up_blocks[i](torch.cat([down, inner[i + 1]], 1)))
        return tuple(conv(x) for conv, x in zip(self.out_convs, outs))

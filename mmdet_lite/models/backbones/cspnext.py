"""CSPNeXt, RTMDet's backbone (mmdet 3.3.0's ``CSPNeXt``), and its CSP blocks (shared with the
neck)."""
import torch
import torch.nn as nn

from ..layers import ConvBN

# Per stage: in channels, out channels, blocks, identity shortcut in the blocks, SPP before the CSP.
_ARCHS = {
    "P5": [(64, 128, 3, True, False), (128, 256, 6, True, False), (256, 512, 6, True, False),
           (512, 1024, 3, False, True)],
    "P6": [(64, 128, 3, True, False), (128, 256, 6, True, False), (256, 512, 6, True, False),
           (512, 768, 3, True, False), (768, 1024, 3, False, True)],
}


class ChannelAttention(nn.Module):
    """Squeeze-excite without reduction, ``x * hardsigmoid(fc(avgpool(x)))``: (N, C, H, W)."""

    def __init__(self, channels):
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)
        self.act = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.act(self.fc(x.mean((2, 3), keepdim=True)))


class DepthwiseSeparableConv(nn.Module):
    """k x k depthwise then 1x1 pointwise ConvBN-act: (N, Cin, H, W) -> (N, Cout, H, W)."""

    def __init__(self, in_channels, out_channels, kernel_size=5, act="silu"):
        super().__init__()
        self.depthwise = ConvBN(in_channels, in_channels, kernel_size, groups=in_channels, act=act)
        self.pointwise = ConvBN(in_channels, out_channels, 1, act=act)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class CSPNeXtBlock(nn.Module):
    """3x3 ConvBN then 5x5 depthwise-separable conv, plus ``x`` when ``shortcut``: (N, C, H, W)."""

    def __init__(self, channels, shortcut=True, kernel_size=5, act="silu"):
        super().__init__()
        self.conv1 = ConvBN(channels, channels, 3, act=act)
        self.conv2 = DepthwiseSeparableConv(channels, channels, kernel_size, act=act)
        self.shortcut = shortcut

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        return out + x if self.shortcut else out


class CSPLayer(nn.Module):
    """Cross-stage-partial layer with CSPNeXt blocks: (N, Cin, H, W) -> (N, Cout, H, W).

    ``main_conv`` -> ``blocks`` and ``short_conv`` (1x1, ``expand_ratio * Cout`` channels each),
    concatenated, optional ``attention`` (``ChannelAttention``), then ``final_conv`` (1x1).
    """

    def __init__(self, in_channels, out_channels, num_blocks=1, shortcut=True, expand_ratio=0.5,
                 channel_attention=False, act="silu"):
        super().__init__()
        mid = int(out_channels * expand_ratio)
        self.main_conv = ConvBN(in_channels, mid, 1, act=act)
        self.short_conv = ConvBN(in_channels, mid, 1, act=act)
        self.final_conv = ConvBN(2 * mid, out_channels, 1, act=act)
        self.blocks = nn.Sequential(*[CSPNeXtBlock(mid, shortcut, act=act)
                                      for _ in range(num_blocks)])
        self.attention = ChannelAttention(2 * mid) if channel_attention else None

    def forward(self, x):
        out = torch.cat([self.blocks(self.main_conv(x)), self.short_conv(x)], 1)
        if self.attention is not None:
            out = self.attention(out)
        return self.final_conv(out)


class SPPBottleneck(nn.Module):
    """1x1 ConvBN to C/2, concat with max pools of ``kernel_sizes`` (stride 1), 1x1 ConvBN:
    (N, Cin, H, W) -> (N, Cout, H, W).

    ``chained``: the pools are one ``kernel_sizes[0]`` pool applied repeatedly (SPPF; same numbers
    as 5/9/13 for kernel_sizes (5, 9, 13), since chained max pools of k give 2k-1, 3k-2).
    """

    def __init__(self, in_channels, out_channels, kernel_sizes=(5, 9, 13), chained=False,
                 act="silu"):
        super().__init__()
        mid = in_channels // 2
        self.conv1 = ConvBN(in_channels, mid, 1, act=act)
        self.chained = chained
        sizes = [kernel_sizes[0]] if chained else list(kernel_sizes)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in sizes)
        self.num_pools = len(kernel_sizes)
        self.conv2 = ConvBN(mid * (self.num_pools + 1), out_channels, 1, act=act)

    def forward(self, x):
        feats = [self.conv1(x)]
        for i in range(self.num_pools):
            source = feats[-1] if self.chained else feats[0]
            feats.append(self.pools[0 if self.chained else i](source))
        return self.conv2(torch.cat(feats, 1))


class CSPNeXt(nn.Module):
    """CSPNeXt backbone: (N, 3, H, W) -> tuple of maps at strides ``2 ** i`` for ``out_indices``.

    ``stem`` (three 3x3 ConvBN, the first stride 2) then ``stages`` (each: a 3x3 stride-2 ConvBN,
    on the last stage an ``SPPBottleneck``, a ``CSPLayer``). Index 0 is the stem, 1..4 the stages;
    the default (2, 3, 4) gives strides 8/16/32 with ``out_channels`` channels. BatchNorm: torch
    defaults (mmdet's RTMDet configs use (Sync)BN eps 1e-5, momentum 0.1 in torch's convention).
    """

    def __init__(self, arch="P5", deepen_factor=1.0, widen_factor=1.0, expand_ratio=0.5,
                 channel_attention=True, spp_kernel_sizes=(5, 9, 13), split_max_pool=False,
                 act="silu", out_indices=(2, 3, 4)):
        super().__init__()
        settings = _ARCHS[arch]
        stem = int(settings[0][0] * widen_factor)
        self.stem = nn.Sequential(ConvBN(3, stem // 2, 3, 2, act=act),
                                  ConvBN(stem // 2, stem // 2, 3, act=act),
                                  ConvBN(stem // 2, stem, 3, act=act))
        self.stages = nn.ModuleList()
        channels = [stem]
        for cin, cout, blocks, shortcut, spp in settings:
            cin, cout = int(cin * widen_factor), int(cout * widen_factor)
            layers = [ConvBN(cin, cout, 3, 2, act=act)]
            if spp:
                layers.append(SPPBottleneck(cout, cout, tuple(spp_kernel_sizes), split_max_pool,
                                            act=act))
            layers.append(CSPLayer(cout, cout, max(round(blocks * deepen_factor), 1), shortcut,
                                   expand_ratio, channel_attention, act=act))
            self.stages.append(nn.Sequential(*layers))
            channels.append(cout)
        self.out_indices = tuple(out_indices)
        self.out_channels = [channels[i] for i in self.out_indices]

    def forward(self, x):
        x = self.stem(x)
        outs = [x] if 0 in self.out_indices else []
        for i, stage in enumerate(self.stages, 1):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

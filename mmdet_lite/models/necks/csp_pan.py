"""CSP-PAN neck of PicoDet (PaddleDetection's ``CSPPAN``) and the path-aggregation topology it
shares with ``LCPAN``."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet_lite.models.layers import ConvBN, DepthwiseSeparable


def _down_conv(channels, kernel_size, stride, use_depthwise, act):
    """k x k conv (C -> C): depthwise-separable (Paddle's ``DPModule``) or a plain ConvBN."""
    if use_depthwise:
        return DepthwiseSeparable(channels, channels, kernel_size, stride, act=act)
    return ConvBN(channels, channels, kernel_size, stride, act=act)


class DarknetBottleneck(nn.Module):
    """1x1 ConvBN -> k x k ConvBN (or depthwise-separable), plus the input when shapes allow.

    (N, Cin, H, W) -> (N, Cout, H, W); the hidden width is ``int(out_channels * expansion)``.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, expansion=0.5, add_identity=True,
                 use_depthwise=False, act="leaky_relu"):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = ConvBN(in_channels, hidden, 1, act=act)
        if use_depthwise:
            self.conv2 = DepthwiseSeparable(hidden, out_channels, kernel_size, act=act,
                                            mid_channels=out_channels)
        else:
            self.conv2 = ConvBN(hidden, out_channels, kernel_size, act=act)
        self.add_identity = add_identity and in_channels == out_channels

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    """Cross-stage-partial layer: (N, Cin, H, W) -> (N, Cout, H, W).

    Two 1x1 branches of ``int(out_channels * expand_ratio)`` channels; the main one goes through
    ``num_blocks`` bottlenecks; both are concatenated and fused by a 1x1 ``final_conv``.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, expand_ratio=0.5, num_blocks=1,
                 add_identity=True, use_depthwise=False, act="leaky_relu"):
        super().__init__()
        mid = int(out_channels * expand_ratio)
        self.main_conv = ConvBN(in_channels, mid, 1, act=act)
        self.short_conv = ConvBN(in_channels, mid, 1, act=act)
        self.final_conv = ConvBN(2 * mid, out_channels, 1, act=act)
        self.blocks = nn.Sequential(*[
            DarknetBottleneck(mid, mid, kernel_size, 1.0, add_identity, use_depthwise, act=act)
            for _ in range(num_blocks)])

    def forward(self, x):
        main = self.blocks(self.main_conv(x))
        return self.final_conv(torch.cat([main, self.short_conv(x)], dim=1))


class PathAggregationNeck(nn.Module):
    """Top-down then bottom-up path aggregation shared by ``CSPPAN`` and ``LCPAN``.

    Inputs: L maps (N, in_channels[i], H_i, W_i) with strides doubling level to level. Each is first
    projected by a 1x1 ConvBN (``lateral_convs``) to ``out_channels`` C. Fusion blocks built by
    ``make_block()`` map a concatenation (N, 2C, H, W) to (N, C, H, W). With
    ``num_features == L + 1`` an extra level at twice the last stride is the sum of two stride-2
    convs (``first_top_conv`` on the last lateral map, ``second_top_conv`` on the last output).
    Output: list of ``num_features`` maps (N, C, H_i, W_i); ``out_channels`` is
    ``[C] * num_features``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, num_features, use_depthwise, act,
                 make_block):
        super().__init__()
        num_levels = len(in_channels)
        if num_features not in (num_levels, num_levels + 1):
            raise ValueError(f"num_features must be {num_levels} or {num_levels + 1} for "
                             f"{num_levels} input levels, got {num_features}")
        self.num_features = num_features
        self.out_channels = [out_channels] * num_features
        self.lateral_convs = nn.ModuleList(ConvBN(c, out_channels, 1, act=act) for c in in_channels)
        if num_features == num_levels + 1:
            self.first_top_conv = _down_conv(out_channels, kernel_size, 2, use_depthwise, act)
            self.second_top_conv = _down_conv(out_channels, kernel_size, 2, use_depthwise, act)
        self.top_down_blocks = nn.ModuleList(make_block() for _ in range(num_levels - 1))
        self.downsamples = nn.ModuleList(
            _down_conv(out_channels, kernel_size, 2, use_depthwise, act)
            for _ in range(num_levels - 1))
        self.bottom_up_blocks = nn.ModuleList(make_block() for _ in range(num_levels - 1))

    def forward(self, inputs):
        feats = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        inner = [feats[-1]]
        for block, low in zip(self.top_down_blocks, reversed(feats[:-1])):
            up = F.interpolate(inner[0], scale_factor=2.0, mode="nearest")
            inner.insert(0, block(torch.cat([up, low], dim=1)))
        outs = [inner[0]]
        for down, block, high in zip(self.downsamples, self.bottom_up_blocks, inner[1:]):
            outs.append(block(torch.cat([down(outs[-1]), high], dim=1)))
        if self.num_features == len(feats) + 1:
            outs.append(self.first_top_conv(feats[-1]) + self.second_top_conv(outs[-1]))
        return outs


class CSPPAN(PathAggregationNeck):
    """CSP path-aggregation neck: list of L maps -> list of ``num_features`` maps of
    ``out_channels``.

    Fusion blocks are ``CSPLayer(2C, C)`` without identity shortcut; downsampling convs are
    depthwise-separable when ``use_depthwise``. ``act`` is used everywhere (e.g. ``"relu6"`` for
    picodet_s_416_coco_npu).
    """

    def __init__(self, in_channels, out_channels, kernel_size=5, num_features=4, num_csp_blocks=1,
                 use_depthwise=True, act="hardswish"):
        def make_block():
            return CSPLayer(2 * out_channels, out_channels, kernel_size, num_blocks=num_csp_blocks,
                            add_identity=False, use_depthwise=use_depthwise, act=act)

        super().__init__(in_channels, out_channels, kernel_size, num_features, use_depthwise, act,
                         make_block)

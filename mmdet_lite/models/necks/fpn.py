"""PaddleDetection's ``FPN`` (``ppdet/modeling/necks/fpn.py``) as SOLOv2 configures it."""
import math

import torch.nn as nn
import torch.nn.functional as F

from mmdet_lite.utils.errors import UserError


def _xavier_uniform_(conv, fan_out):
    """Paddle's ``XavierUniform(fan_out=...)`` on a conv weight (fan-in from its shape); bias 0."""
    fan_in = conv.weight[0].numel()
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    nn.init.uniform_(conv.weight, -limit, limit)
    nn.init.zeros_(conv.bias)


class FPN(nn.Module):
    """Feature pyramid: list of L maps (N, in_channels[i], H_i, W_i), strides doubling ->
    list of L + ``extra_stage`` maps (N, out_channel, H_i, W_i).

    ``lateral_convs[i]``: 1x1 conv (with bias) on input i; top-down, coarsest first, each lateral
    adds the nearest 2x upsampling of the one above; ``fpn_convs[i]``: 3x3 conv (with bias) on
    the sum. Without extra convs (the only mode here, SOLOv2's) the one extra level is
    ``max_pool2d(kernel 1, stride 2)`` of the last output (P6 from P5). Paddle's names
    (``fpn_inner_res{n}_sum[_lateral]``, ``fpn_res{n}_sum``) are mapped by ``solov2_rules``.
    ``spatial_scales`` (1 / stride of each input, Paddle's from_config) give ``out_strides``;
    ``out_channels`` lists the output channels, one per level, as the other necks do.
    Initialisation as Paddle's: Xavier-uniform (lateral fan-out = its input channels, output
    conv fan-out = 9 * out_channel), zero biases.
    """

    def __init__(self, in_channels, out_channel, spatial_scales=(0.25, 0.125, 0.0625, 0.03125),
                 has_extra_convs=False, extra_stage=1, norm_type=None):
        super().__init__()
        if has_extra_convs or norm_type is not None or extra_stage not in (0, 1):
            raise UserError(f"neck FPN: only has_extra_convs False, norm_type None and extra_stage "
                            f"0 or 1 are supported (got {has_extra_convs}, {norm_type!r}, "
                            f"{extra_stage})")
        if len(spatial_scales) != len(in_channels):
            raise UserError(f"neck FPN: spatial_scales {list(spatial_scales)} needs one value per "
                            f"input ({len(in_channels)} in_channels)")
        self.extra_stage = extra_stage
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, out_channel, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(nn.Conv2d(out_channel, out_channel, 3, padding=1)
                                       for _ in in_channels)
        for lateral, in_c in zip(self.lateral_convs, in_channels):
            _xavier_uniform_(lateral, fan_out=in_c)
        for conv in self.fpn_convs:
            _xavier_uniform_(conv, fan_out=out_channel * 9)
        strides = [round(1.0 / s) for s in spatial_scales]
        self.out_strides = strides + [strides[-1] * 2] * extra_stage
        self.out_channels = [out_channel] * len(self.out_strides)

    def forward(self, feats):
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, feats)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], scale_factor=2.0,
                                                              mode="nearest")
        outs = [conv(lateral) for conv, lateral in zip(self.fpn_convs, laterals)]
        if self.extra_stage:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return outs

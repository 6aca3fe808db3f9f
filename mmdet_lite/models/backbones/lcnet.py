"""PP-LCNet backbone (PaddleDetection's ``LCNet``)."""
import torch.nn as nn

from mmdet_lite.models.layers import ConvBN, DepthwiseSeparable

# Per stage: (kernel size, in channels, out channels, stride, use SE) at scale 1.0.
_STAGES = {
    "blocks2": [(3, 16, 32, 1, False)],
    "blocks3": [(3, 32, 64, 2, False), (3, 64, 64, 1, False)],
    "blocks4": [(3, 64, 128, 2, False), (3, 128, 128, 1, False)],
    "blocks5": [(3, 128, 256, 2, False)] + [(5, 256, 256, 1, False)] * 5,
    "blocks6": [(5, 256, 512, 2, True), (5, 512, 512, 1, True)],
}
# Feature-map index (as in Paddle's ``feature_maps``) of the output of each stage.
_STAGE_INDEX = {"blocks3": 2, "blocks4": 3, "blocks5": 4, "blocks6": 5}


def make_divisible(value, divisor=8, min_value=None):
    """Round ``value`` to the nearest multiple of ``divisor`` (never below 90% of it)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class LCNet(nn.Module):
    """PP-LCNet backbone: (N, 3, H, W) -> list of feature maps, one per entry of ``feature_maps``.

    ``feature_maps`` uses Paddle's numbering: 2, 3, 4, 5 are the outputs of ``blocks3`` ..
    ``blocks6`` (strides 4, 8, 16, 32). ``out_channels`` lists the channels of the returned maps,
    e.g. ``scale=0.75`` with the default ``(3, 4, 5)`` gives ``[96, 192, 384]``.
    """

    def __init__(self, scale=1.0, feature_maps=(3, 4, 5), act="hardswish"):
        super().__init__()
        self.scale = scale
        self.feature_maps = tuple(feature_maps)
        unknown = set(self.feature_maps) - set(_STAGE_INDEX.values())
        if unknown:
            raise ValueError(f"LCNet feature_maps must be among 2, 3, 4, 5, got {sorted(unknown)}")

        def ch(channels):
            return make_divisible(channels * scale)

        self.conv1 = ConvBN(3, ch(16), 3, stride=2, act=act)
        self.out_channels = []
        for name, stage in _STAGES.items():
            blocks = [DepthwiseSeparable(ch(cin), ch(cout), k, s, act=act, use_se=se)
                      for k, cin, cout, s, se in stage]
            self.add_module(name, nn.Sequential(*blocks))
            if _STAGE_INDEX.get(name) in self.feature_maps:
                self.out_channels.append(ch(stage[-1][2]))

    def forward(self, x):
        x = self.blocks2(self.conv1(x))
        outs = []
        for name, index in _STAGE_INDEX.items():
            x = getattr(self, name)(x)
            if index in self.feature_maps:
                outs.append(x)
            if index >= max(self.feature_maps):
                break
        return outs

"""LC-PAN neck of PicoDet v2 (PaddleDetection's ``LCPAN``)."""
import torch.nn as nn

from mmdet_lite.models.layers import DepthwiseSeparable
from mmdet_lite.models.necks.csp_pan import PathAggregationNeck


class LCPAN(PathAggregationNeck):
    """Path-aggregation neck with PP-LCNet blocks: list of L maps -> list of ``num_features`` maps.

    Inputs (N, in_channels[i], H_i, W_i) at strides 8, 16, 32; outputs ``num_features`` maps of
    ``out_channels`` C (the 4th, at stride 64, when ``num_features=4``). Each fusion block is two
    depthwise-separable blocks, 2C -> 2C -> C with ``kernel_size``. ``act`` is used by the lateral
    and
    downsampling convs; the fusion blocks use ``block_act``, which Paddle fixes to hard swish.
    """

    def __init__(self, in_channels, out_channels, kernel_size=5, num_features=4, use_depthwise=True,
                 act="hardswish", block_act="hardswish"):
        def make_block():
            return nn.Sequential(
                DepthwiseSeparable(2 * out_channels, 2 * out_channels, kernel_size, act=block_act),
                DepthwiseSeparable(2 * out_channels, out_channels, kernel_size, act=block_act))

        super().__init__(in_channels, out_channels, kernel_size, num_features, use_depthwise, act,
                         make_block)

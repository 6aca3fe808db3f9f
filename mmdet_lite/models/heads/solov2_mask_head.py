"""SOLOv2's mask-feature head (ppdet 2.6.0 ``SOLOv2MaskHead``)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet_lite.models.heads.solov2_blocks import ConvGN, coord_features

__all__ = ["SOLOv2MaskHead"]


class SOLOv2MaskHead(nn.Module):
    """Unified mask features at stride 4 from FPN levels ``0..end_level``.

    Input: the FPN maps (N, ``in_channels``, H_l, W_l), level 0 at stride 4 (P2; maps past
    ``end_level`` are ignored). ``convs_all_levels[i]``: for level 0 one ConvGN + ReLU (3x3,
    ``mid_channels``); for level ``i > 0``, ``i`` blocks of ConvGN + ReLU each followed by a 2x
    bilinear upsampling, back to stride 4; the last level gets two CoordConv channels (x, y)
    first. ``start_level`` must be 0 (every ppdet config; Paddle's own code indexes the inputs
    from 0 whatever it is). The levels are summed and ``conv_pred`` (1x1 ConvGN + ReLU) gives
    ``mask_feats`` (N, ``out_channels`` = E, H_0, W_0). ``use_dcn_in_tower``: every conv,
    ``conv_pred`` included, is a DCNv2 (Paddle's ``use_dcn``).
    """

    def __init__(self, in_channels=256, mid_channels=128, out_channels=256, start_level=0,
                 end_level=3, use_dcn_in_tower=False):
        super().__init__()
        if start_level != 0 or end_level < 0:
            raise ValueError(f"SOLOv2MaskHead: only start_level 0 and end_level >= 0 are "
                             f"supported, got {start_level}, {end_level}")
        self.end_level = end_level
        self.out_channels = out_channels
        levels = []
        for i in range(end_level + 1):
            first_in = in_channels + 2 if i == end_level and i > 0 else in_channels
            levels.append(nn.ModuleList(
                ConvGN(first_in if j == 0 else mid_channels, mid_channels,
                       use_dcn=use_dcn_in_tower) for j in range(max(i, 1))))
        self.convs_all_levels = nn.ModuleList(levels)
        self.conv_pred = ConvGN(mid_channels, out_channels, kernel_size=1, use_dcn=use_dcn_in_tower)

    def forward(self, feats):
        fused = None
        for i, (convs, x) in enumerate(zip(self.convs_all_levels, feats)):
            if i == self.end_level and i > 0:
                x = torch.cat([x, coord_features(x)], dim=1)
            for conv in convs:
                x = conv(x)
                if i > 0:
                    x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            fused = x if fused is None else fused + x
        return self.conv_pred(fused)

"""SOLOv2's kernel and category head (ppdet 2.6.0 ``SOLOv2Head``)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet_lite.models.heads.solov2_blocks import ConvGN, DropBlock, coord_features

__all__ = ["SOLOv2Head", "points_nms"]


def points_nms(heat):
    """SOLO's 2x2 point NMS on scores (N, C, S, S): a score survives where it equals the max of
    the 2x2 window ending at it (max-pool k2 s1 p1, cropped), else it becomes 0."""
    hmax = F.max_pool2d(heat, kernel_size=2, stride=1, padding=1)
    return heat * (hmax[:, :, :-1, :-1] == heat).to(heat.dtype)


class SOLOv2Head(nn.Module):
    """The kernel and category branches of SOLOv2 on FPN maps.

    Input: five maps (N, ``in_channels``, H_l, W_l) of strides 4, 8, 16, 32, 64 (P2..P6). As
    Paddle's ``_split_feats``: P2 is halved (bilinear) and P6 resized to P5's size, so the
    levels have strides 8, 8, 16, 32, 32 (``segm_strides``). Per level ``l`` with grid
    ``S_l = num_grids[l]``: the map plus two CoordConv channels (x, y) is resized to S_l x S_l
    (bilinear); the kernel tower (``kernel_convs``: ``stacked_convs`` x ConvGN + ReLU, the first
    on ``in_channels + 2``) ends in ``solo_kernel`` (3x3 conv, ``kernel_out_channels`` = E); the
    category tower (``cate_convs``, on the resized map without the coordinates) in
    ``solo_cate`` (3x3 conv, ``num_classes`` = C, bias prior 0.01). Tower convs listed in
    ``dcn_v2_stages`` are DCNv2; ``drop_block`` applies DropBlock(3, 0.9) after both towers in
    training.

    ``forward_levels(feats)`` -> ``(cate_logits, kernels)``: per level (N, C, S, S) and
    (N, E, S, S), what the training loss takes (see ``loss_inputs``). ``forward(feats)`` in
    training returns the same; in eval it returns the flat ``(cate_scores (N, A, C), kernels
    (N, A, E))`` over the A = sum S_l^2 grid cells, levels in order and cells row-major:
    sigmoid scores after ``points_nms`` (Paddle's eval outputs). The post-processing settings
    (``score_threshold``, ``mask_threshold``, ``mask_nms`` kwargs) are kept for the detector.
    """

    def __init__(self, num_classes=80, in_channels=256, seg_feat_channels=256, stacked_convs=4,
                 num_grids=(40, 36, 24, 16, 12), kernel_out_channels=256, dcn_v2_stages=(),
                 segm_strides=(8, 8, 16, 32, 32), score_threshold=0.1, mask_threshold=0.5,
                 mask_nms=None, drop_block=False, prior_prob=0.01):
        super().__init__()
        if len(num_grids) != len(segm_strides):
            raise ValueError(f"SOLOv2Head: {len(num_grids)} num_grids but {len(segm_strides)} "
                             "segm_strides")
        self.num_classes = num_classes
        self.num_grids = tuple(int(g) for g in num_grids)
        self.segm_strides = tuple(int(s) for s in segm_strides)
        self.kernel_out_channels = kernel_out_channels
        self.score_threshold = float(score_threshold)
        self.mask_threshold = float(mask_threshold)
        self.mask_nms = dict(mask_nms or {})
        dcn_v2_stages = set(dcn_v2_stages or ())
        self.kernel_convs = nn.ModuleList(
            ConvGN(in_channels + 2 if i == 0 else seg_feat_channels, seg_feat_channels,
                   use_dcn=i in dcn_v2_stages) for i in range(stacked_convs))
        self.cate_convs = nn.ModuleList(
            ConvGN(in_channels if i == 0 else seg_feat_channels, seg_feat_channels,
                   use_dcn=i in dcn_v2_stages) for i in range(stacked_convs))
        self.solo_kernel = nn.Conv2d(seg_feat_channels, kernel_out_channels, 3, padding=1)
        self.solo_cate = nn.Conv2d(seg_feat_channels, num_classes, 3, padding=1)
        for conv in (self.solo_kernel, self.solo_cate):
            nn.init.normal_(conv.weight, std=0.01)
        nn.init.zeros_(self.solo_kernel.bias)
        nn.init.constant_(self.solo_cate.bias, -math.log((1 - prior_prob) / prior_prob))
        self.drop_block = DropBlock(block_size=3, keep_prob=0.9) if drop_block else None

    @staticmethod
    def split_feats(feats):
        """Paddle's ``_split_feats``: P2 halved, P6 resized to P5 (bilinear, half-pixel)."""
        first = F.interpolate(feats[0], scale_factor=0.5, mode="bilinear", align_corners=False)
        last = F.interpolate(feats[4], size=feats[3].shape[-2:], mode="bilinear",
                             align_corners=False)
        return [first, feats[1], feats[2], feats[3], last]

    def _tower(self, x, convs):
        for conv in convs:
            x = conv(x)
        return x if self.drop_block is None else self.drop_block(x)

    def forward_level(self, feat, level):
        """One level (N, in_channels, H, W) -> ``(cate_logits (N, C, S, S), kernels (N, E, S,
        S))``."""
        grid = self.num_grids[level]
        kernel_feat = torch.cat([feat, coord_features(feat)], dim=1)
        kernel_feat = F.interpolate(kernel_feat, size=(grid, grid), mode="bilinear",
                                    align_corners=False)
        cate_feat = kernel_feat[:, :-2]
        kernels = self.solo_kernel(self._tower(kernel_feat, self.kernel_convs))
        cate_logits = self.solo_cate(self._tower(cate_feat, self.cate_convs))
        return cate_logits, kernels

    def forward_levels(self, feats):
        """Five FPN maps -> ``(cate_logits, kernels)``, lists over the levels."""
        if len(feats) != len(self.num_grids):
            raise ValueError(f"SOLOv2Head takes {len(self.num_grids)} feature maps, got "
                             f"{len(feats)}")
        outs = [self.forward_level(f, i) for i, f in enumerate(self.split_feats(feats))]
        return [o[0] for o in outs], [o[1] for o in outs]

    def forward(self, feats):
        cate_logits, kernels = self.forward_levels(feats)
        if self.training:
            return cate_logits, kernels
        scores = [points_nms(c.sigmoid()).flatten(2).transpose(1, 2) for c in cate_logits]
        kernels = [k.flatten(2).transpose(1, 2) for k in kernels]
        return torch.cat(scores, dim=1), torch.cat(kernels, dim=1)

    def cell_strides(self, device=None):
        """(A,) int64: the ``segm_strides`` value of each grid cell, in the flat order."""
        return torch.cat([torch.full((g * g,), s, dtype=torch.int64, device=device)
                          for g, s in zip(self.num_grids, self.segm_strides)])

    def loss_inputs(self, cate_logits, kernels, mask_feats, targets):
        """The arguments of ``SOLOv2Loss`` as ppdet's ``SOLOv2Head.get_loss`` builds them.

        ``cate_logits`` / ``kernels``: per level (B, C, S, S) / (B, E, S, S) (``forward_levels``);
        ``mask_feats`` (B, E, h, w) from the mask head; ``targets``: the ``Gt2Solov2Target``
        batch entries ``ins_label{l}`` (B, M_l, h, w), ``cate_label{l}`` (B, S_l^2),
        ``grid_order{l}`` (B, M_l) (``b * S_l^2 + cell``) and ``fg_num`` (B,). Returns
        ``(ins_pred_list, ins_label_list, cate_preds (sum B S^2, C), cate_labels, num_ins)``:
        per level the mask logits (B * M_l, h, w) of the targets' cells (``None`` when M_l is 0),
        levels then images then cells in the flat category order.
        """
        batch, channels = mask_feats.shape[:2]
        flat_feats = mask_feats.flatten(2)
        ins_preds, ins_labels, cate_labels = [], [], []
        for level, level_kernels in enumerate(kernels):
            order = targets[f"grid_order{level}"].to(level_kernels.device).long()
            ins_labels.append(targets[f"ins_label{level}"])
            cate_labels.append(targets[f"cate_label{level}"].reshape(-1))
            if order.shape[1] == 0:
                ins_preds.append(None)
                continue
            rows = level_kernels.flatten(2).transpose(1, 2).reshape(-1, channels)
            gathered = rows[order.reshape(-1)].reshape(batch, -1, channels)
            ins_preds.append(torch.bmm(gathered, flat_feats).reshape(-1, *mask_feats.shape[-2:]))
        cate_preds = torch.cat([c.permute(0, 2, 3, 1).reshape(-1, self.num_classes)
                                for c in cate_logits])
        num_ins = targets["fg_num"].sum()
        return ins_preds, ins_labels, cate_preds, torch.cat(cate_labels), num_ins

"""PicoDet v2 head: the PicoFeat tower, the SE attention, the align branch and the DFL integral."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet_lite.models.heads.pico_head_v2_loss import PicoHeadV2Loss
from mmdet_lite.models.layers import ConvBN, DepthwiseSeparable, get_activation
from mmdet_lite.models.post_process.detections import Detections
from mmdet_lite.models.post_process.multiclass_nms import multiclass_nms
from mmdet_lite.utils.boxes import anchor_points, distance2bbox
from mmdet_lite.utils.errors import UserError

DEFAULT_NMS = dict(score_threshold=0.025, nms_top_k=1000, keep_top_k=100, nms_threshold=0.6)


class PicoSE(nn.Module):
    """Squeeze-excitation of PicoFeat: ``conv(x * sigmoid(fc(avg_pool(x))))``, (N, C, H, W) -> same.

    ``conv`` is a 1x1 ConvBN without activation; PicoFeat applies its activation afterwards.
    """

    def __init__(self, channels):
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)
        self.conv = ConvBN(channels, channels, 1)

    def forward(self, x):
        weight = torch.sigmoid(self.fc(F.adaptive_avg_pool2d(x, 1)))
        return self.conv(x * weight)


class PicoFeat(nn.Module):
    """Per-level feature tower of PicoDet: ``num_convs`` x (5x5 depthwise ConvBN, 1x1 ConvBN).

    ``forward(x (N, feat_in, H, W), level)`` -> ``(cls_feat, reg_feat)``, each (N, feat_out, H, W).
    With ``use_se`` (needs ``share_cls_reg``) ``reg_feat`` is the SE-attended ``cls_feat``. Without
    ``share_cls_reg``, Paddle's quirk is kept: each reg conv reads the current cls feature, so the
    reg feature is one conv on top of the cls tower.
    """

    def __init__(self, feat_in=96, feat_out=96, num_fpn_stride=4, num_convs=2, norm_type="bn",
                 share_cls_reg=True, act="hard_swish", use_se=True):
        super().__init__()
        if norm_type not in ("bn", "sync_bn"):
            raise UserError(f"head.conv_feat.norm_type: only 'bn' is supported, got {norm_type!r}")
        if use_se and not share_cls_reg:
            raise UserError("head.conv_feat: use_se=True needs share_cls_reg=True")
        self.share_cls_reg = share_cls_reg
        self.use_se = use_se

        def tower(kernel_size):
            return nn.ModuleList(
                nn.ModuleList(
                    ConvBN(feat_in if i == 0 else feat_out, feat_out, kernel_size,
                           groups=feat_out if kernel_size > 1 else 1, act=act)
                    for i in range(num_convs))
                for _ in range(num_fpn_stride))

        self.cls_conv_dw, self.cls_conv_pw = tower(5), tower(1)
        if not share_cls_reg:
            self.reg_conv_dw, self.reg_conv_pw = tower(5), tower(1)
        if use_se:
            self.se = nn.ModuleList(PicoSE(feat_out) for _ in range(num_fpn_stride))
            self.se_act = get_activation(act)

    def forward(self, x, level):
        cls_feat = reg_feat = x
        for i in range(len(self.cls_conv_dw[level])):
            cls_feat = self.cls_conv_dw[level][i](cls_feat)
            if not self.share_cls_reg:
                reg_feat = self.reg_conv_dw[level][i](cls_feat)
            cls_feat = self.cls_conv_pw[level][i](cls_feat)
            if not self.share_cls_reg:
                reg_feat = self.reg_conv_pw[level][i](cls_feat)
        if self.use_se:
            return cls_feat, self.se_act(self.se[level](cls_feat))
        return cls_feat, (cls_feat if self.share_cls_reg else reg_feat)


class Integral(nn.Module):
    """DFL integral: softmax over ``reg_max + 1`` bins dotted with ``0..reg_max``.

    ``(..., 4 * (reg_max + 1))`` distributions -> ``(..., 4)`` distances in stride units.
    """

    def __init__(self, reg_max=7):
        super().__init__()
        self.reg_max = reg_max
        self.register_buffer("project", torch.linspace(0, reg_max, reg_max + 1), persistent=False)

    def forward(self, x):
        x = F.softmax(x.reshape(*x.shape[:-1], 4, self.reg_max + 1), dim=-1)
        return F.linear(x, self.project.to(x.dtype))


class PicoHeadV2(nn.Module):
    """PicoDet v2 head (GFL-style with DFL boxes and an optional align branch).

    ``forward(feats)`` with one (N, feat_in_chan, H_l, W_l) map per stride returns
    ``(scores (N, A, C), bboxes (N, A, 4))``: scores are ``sigmoid(cls)`` or, with
    ``use_align_head``, ``sqrt(sigmoid(cls) * sigmoid(align) + 1e-9)``; boxes are x1 y1 x2 y2 in
    input pixels around anchor points ``(x + cell_offset) * stride``. ``forward_levels`` gives the
    per-level raw outputs the training loss reuses; ``postprocess`` rescales and runs NMS.
    ``loss(feats, targets)`` gives the training losses (see ``PicoHeadV2Loss``). Training-only
    settings (``grid_cell_scale``, ``static_assigner_epoch``, ``static_assigner``, ``assigner``,
    ``loss_class``, ``loss_dfl``, ``loss_bbox``; dicts of Paddle's kwargs) are kept in
    ``self.train_cfg``; they build the loss module ``self.criterion`` on the first
    ``get_criterion()`` (the first ``loss``), so an inference-only head never builds it. The loss
    holds no parameters or buffers: the state dict is the same either way.
    """

    def __init__(self, num_classes=80, feat_in_chan=96, fpn_stride=(8, 16, 32, 64), reg_max=7,
                 cell_offset=0.5, prior_prob=0.01, use_align_head=True, conv_feat=None, nms=None,
                 act="hard_swish", grid_cell_scale=5.0, static_assigner_epoch=60,
                 static_assigner=None, assigner=None, loss_class=None, loss_dfl=None,
                 loss_bbox=None):
        super().__init__()
        self.train_cfg = dict(grid_cell_scale=grid_cell_scale,
                              static_assigner_epoch=static_assigner_epoch,
                              static_assigner=dict(static_assigner or {}),
                              assigner=dict(assigner or {}), loss_class=dict(loss_class or {}),
                              loss_dfl=dict(loss_dfl or {}), loss_bbox=dict(loss_bbox or {}))
        conv_feat = dict(conv_feat or {})
        if conv_feat.pop("name", "PicoFeat") != "PicoFeat":
            raise UserError("head.conv_feat.name: only 'PicoFeat' is supported")
        conv_feat.setdefault("feat_in", feat_in_chan)
        conv_feat.setdefault("feat_out", feat_in_chan)
        conv_feat.setdefault("num_fpn_stride", len(fpn_stride))
        if conv_feat["num_fpn_stride"] != len(fpn_stride) or conv_feat["feat_out"] != feat_in_chan:
            raise UserError("head: conv_feat.num_fpn_stride must equal len(fpn_stride) and "
                            "conv_feat.feat_out must equal feat_in_chan")
        nms = dict(nms or {})
        nms.pop("name", None)
        unknown = set(nms) - set(DEFAULT_NMS)
        if unknown:
            raise UserError(f"head.nms: unknown keys {sorted(unknown)}; use {sorted(DEFAULT_NMS)}")
        self.nms = {**DEFAULT_NMS, **nms}
        self.num_classes = num_classes
        self.fpn_stride = tuple(fpn_stride)
        self.reg_max = reg_max
        self.cell_offset = cell_offset
        self.prior_prob = prior_prob
        self.use_align_head = use_align_head

        self.conv_feat = PicoFeat(**conv_feat)
        levels = range(len(fpn_stride))
        self.head_cls = nn.ModuleList(nn.Conv2d(feat_in_chan, num_classes, 1) for _ in levels)
        self.head_reg = nn.ModuleList(
            nn.Conv2d(feat_in_chan, 4 * (reg_max + 1), 1) for _ in levels)
        if use_align_head:
            # Paddle's DPModule(feat_in_chan, 1, 5, use_act_in_out=False): a full 5x5 conv to 1.
            self.cls_align = nn.ModuleList(
                DepthwiseSeparable(feat_in_chan, 1, 5, act=act, mid_channels=1, act_out=False)
                for _ in levels)
        self.integral = Integral(reg_max)
        self._init_weights()

    def _init_weights(self):
        """Paddle's initialisers: N(0, 0.01) convs, N(0, 1e-3) SE fc, focal prior on cls bias."""
        for m in self.conv_feat.modules():
            if isinstance(m, ConvBN):
                nn.init.normal_(m.conv.weight, std=0.01)
            elif isinstance(m, PicoSE):
                nn.init.normal_(m.fc.weight, std=0.001)
                nn.init.zeros_(m.fc.bias)
        bias_cls = -math.log((1 - self.prior_prob) / self.prior_prob)
        for cls, reg in zip(self.head_cls, self.head_reg):
            nn.init.normal_(cls.weight, std=0.01)
            nn.init.constant_(cls.bias, bias_cls)
            nn.init.normal_(reg.weight, std=0.01)
            nn.init.zeros_(reg.bias)
        for branch in getattr(self, "cls_align", []):
            for block in (branch.dw_conv, branch.pw_conv):
                nn.init.kaiming_uniform_(block.conv.weight, nonlinearity="relu")

    def forward_levels(self, feats):
        """Raw per-level outputs: lists of ``cls_score (N, C, H, W)`` float32 probabilities
        (align-combined as in ``forward``) and ``reg (N, 4 * (reg_max + 1), H, W)`` DFL logits."""
        if len(feats) != len(self.fpn_stride):
            raise ValueError(f"PicoHeadV2 got {len(feats)} feature maps for strides "
                             f"{self.fpn_stride}")
        cls_scores, regs = [], []
        for level, feat in enumerate(feats):
            cls_feat, shared_feat = self.conv_feat(feat, level)
            # Scores in float32 even under autocast: in float16 the 1e-9 under the square root
            # vanishes and a saturated negative gives sqrt(0), whose gradient is infinite.
            cls_score = torch.sigmoid(self.head_cls[level](shared_feat).float())
            if self.use_align_head:
                align = torch.sigmoid(self.cls_align[level](cls_feat).float())
                cls_score = (cls_score * align + 1e-9).sqrt()
            cls_scores.append(cls_score)
            regs.append(self.head_reg[level](shared_feat))
        return cls_scores, regs

    def get_anchor_points(self, feats):
        """Anchor points (A, 2) in stride units and their strides (A, 1) for these feature maps."""
        sizes = [f.shape[-2:] for f in feats]
        return anchor_points(sizes, self.fpn_stride, self.cell_offset, feats[0].dtype,
                             feats[0].device)

    def forward(self, feats):
        cls_scores, regs = self.forward_levels(feats)
        scores = torch.cat([s.flatten(2) for s in cls_scores], dim=2).transpose(1, 2)
        regs = torch.cat([r.flatten(2) for r in regs], dim=2).transpose(1, 2)
        points, strides = self.get_anchor_points(feats)
        bboxes = distance2bbox(points, self.integral(regs)) * strides
        return scores, bboxes

    def loss(self, feats, targets):
        """Training losses for these feature maps.

        ``targets``: dict with ``gt_bboxes`` (B, n, 4) x1y1x2y2 in input pixels, ``gt_labels``
        (B, n, 1) int64, ``pad_gt_mask`` (B, n, 1) (1 = real box) and the current epoch as
        ``epoch`` (or ppdet's ``epoch_id``), which picks the assigner. Returns dict(loss_vfl,
        loss_bbox, loss_dfl) of float32 scalars; under autocast only the convolutions run in low
        precision.
        """
        epoch = targets["epoch"] if "epoch" in targets else targets.get("epoch_id")
        if epoch is None:
            raise KeyError("PicoHeadV2.loss: targets need the current epoch as 'epoch'")
        cls_scores, regs = self.forward_levels(feats)
        sizes = [f.shape[-2:] for f in feats]
        with torch.autocast(device_type=feats[0].device.type, enabled=False):
            scores = torch.cat([s.flatten(2) for s in cls_scores], dim=2).transpose(1, 2).float()
            regs = torch.cat([r.flatten(2) for r in regs], dim=2).transpose(1, 2).float()
            points, strides = anchor_points(sizes, self.fpn_stride, self.cell_offset,
                                            torch.float32, scores.device)
            # Decoded in pixels and brought back to stride units, in ppdet's order of operations.
            bboxes = distance2bbox(points * strides, self.integral(regs) * strides) / strides
            return self.get_criterion()(scores, regs, bboxes, points, strides,
                                  [h * w for h, w in sizes], targets["gt_labels"],
                                  targets["gt_bboxes"], targets["pad_gt_mask"], epoch)

    def get_criterion(self):
        """The training loss (``PicoHeadV2Loss`` of ``train_cfg``), built on the first call."""
        criterion = getattr(self, "criterion", None)
        if criterion is None:
            self.criterion = criterion = PicoHeadV2Loss(self.num_classes, self.reg_max,
                                                        **self.train_cfg)
        return criterion

    def postprocess(self, outputs, scale_factors):
        """``(scores (N, A, C), bboxes (N, A, 4))`` and ``scale_factors (N, 2)`` (sy, sx) -> list of
        ``Detections`` (boxes in original pixels, no masks) after NMS."""
        scores, bboxes = outputs
        scale_y, scale_x = scale_factors.to(bboxes.dtype).unbind(-1)
        scale = torch.stack([scale_x, scale_y, scale_x, scale_y], dim=-1).unsqueeze(1)
        return [Detections(*multiclass_nms(image_boxes, image_scores, **self.nms))
                for image_boxes, image_scores in zip(bboxes / scale, scores)]

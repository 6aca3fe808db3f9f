"""PicoHeadV2's training loss: ATSS then task-aligned assignment, varifocal, GIoU and DFL losses."""
import torch
import torch.distributed as dist
import torch.nn as nn

from mmdet_lite.models.assigners import ATSSAssigner, TaskAlignedAssigner
from mmdet_lite.models.losses import DistributionFocalLoss, GIoULoss, VarifocalLoss
from mmdet_lite.utils.boxes import bbox2distance
from mmdet_lite.utils.errors import UserError

# PicoHeadV2 clips its DFL targets to reg_max - 0.1 (the shared helper's default eps is 0.01).
DFL_TARGET_EPS = 0.1


def _kwargs(cfg, option, name):
    """A copy of the config dict ``head.<option>`` without its optional Paddle ``name``."""
    cfg = dict(cfg or {})
    given = cfg.pop("name", name)
    if given != name:
        raise UserError(f"head.{option}.name: only {name!r} is supported, got {given!r}")
    return cfg


def _mean_over_ranks(value):
    """Sum of ``value`` over all processes divided by their number (``value`` alone when
    ``torch.distributed`` is not initialised)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


class PicoHeadV2Loss(nn.Module):
    """PicoHeadV2's training losses, with ppdet 2.6.0's ``PicoHeadV2.get_loss`` math.

    Labels come from ATSS (``static_assigner``; anchors are ``grid_cell_scale * stride`` squares
    around the anchor points, scores are the IoU of the predicted box) while ``epoch <
    static_assigner_epoch``, then from the task-aligned assigner on the detached predictions.
    With ``avg_factor`` = the assigned scores' sum (averaged over ranks, clamped to >= 1):
    ``loss_vfl`` = VFL(scores, assigned scores) / avg_factor; ``loss_bbox`` = sum over positives of
    GIoU(box, target) * w / avg_factor; ``loss_dfl`` = DFL(regs, target distances) * w / 4 /
    avg_factor, with w the positive's largest assigned score. ppdet clamps avg_factor only with
    several GPUs; we clamp always so that a batch without positives gives finite losses.

    Positives are selected by masks over all anchors (no ``nonzero``, no host sync); negatives
    get a dummy box target and zero weight.

    ``forward(pred_scores (B, A, C) probabilities, pred_regs (B, A, 4 * (reg_max + 1)) DFL logits,
    pred_bboxes (B, A, 4) x1y1x2y2 in stride units, points (A, 2) in stride units, strides (A, 1),
    num_anchors_list (anchors per level), gt_labels (B, n, 1) int64, gt_bboxes (B, n, 4) input
    pixels, pad_gt_mask (B, n, 1), epoch int)`` -> dict(loss_vfl, loss_bbox, loss_dfl), float32
    scalars. Inputs are expected in float32; call it with autocast disabled.
    """

    def __init__(self, num_classes, reg_max=7, grid_cell_scale=5.0, static_assigner_epoch=60,
                 static_assigner=None, assigner=None, loss_class=None, loss_dfl=None,
                 loss_bbox=None):
        super().__init__()
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.grid_cell_scale = grid_cell_scale
        self.static_assigner_epoch = static_assigner_epoch
        self.static_assigner = ATSSAssigner(
            num_classes=num_classes, **_kwargs(static_assigner, "static_assigner", "ATSSAssigner"))
        self.assigner = TaskAlignedAssigner(**_kwargs(assigner, "assigner", "TaskAlignedAssigner"))
        loss_class = {"use_sigmoid": False, **_kwargs(loss_class, "loss_class", "VarifocalLoss")}
        if loss_class["use_sigmoid"]:
            raise UserError("head.loss_class.use_sigmoid must be False: PicoHeadV2's scores are "
                            "already probabilities")
        self.loss_vfl = VarifocalLoss(**loss_class)
        self.loss_dfl = DistributionFocalLoss(
            **_kwargs(loss_dfl, "loss_dfl", "DistributionFocalLoss"))
        self.loss_bbox = GIoULoss(**_kwargs(loss_bbox, "loss_bbox", "GIoULoss"))

    @torch.no_grad()
    def assign(self, pred_scores, pred_bboxes, points, strides, num_anchors_list, gt_labels,
               gt_bboxes, pad_gt_mask, epoch):
        """Per-anchor targets: labels (B, A) (num_classes = background), boxes (B, A, 4) in stride
        units, scores (B, A, C)."""
        centers = points * strides
        pred_bboxes = pred_bboxes * strides
        if epoch < self.static_assigner_epoch:
            half = strides * (self.grid_cell_scale * 0.5)
            anchors = torch.cat([centers - half, centers + half], dim=-1)
            labels, bboxes, scores = self.static_assigner(
                anchors, num_anchors_list, gt_labels, gt_bboxes, pad_gt_mask,
                bg_index=self.num_classes, pred_bboxes=pred_bboxes)
        else:
            labels, bboxes, scores = self.assigner(
                pred_scores, pred_bboxes, centers, num_anchors_list, gt_labels, gt_bboxes,
                pad_gt_mask, bg_index=self.num_classes)
        return labels, bboxes / strides, scores

    def forward(self, pred_scores, pred_regs, pred_bboxes, points, strides, num_anchors_list,
                gt_labels, gt_bboxes, pad_gt_mask, epoch):
        labels, target_bboxes, target_scores = self.assign(
            pred_scores.detach(), pred_bboxes.detach(), points, strides, num_anchors_list,
            gt_labels, gt_bboxes.float(), pad_gt_mask.float(), epoch)
        positive = (labels >= 0) & (labels < self.num_classes)  # (B, A)
        weight = torch.where(positive, target_scores.amax(dim=-1),
                             torch.zeros_like(target_scores[..., 0])).reshape(-1)

        # Negatives: a 2x2 box around the anchor point keeps GIoU finite; their weight is 0.
        dummy = torch.cat([points - 1.0, points + 1.0], dim=-1).expand_as(target_bboxes)
        box_targets = torch.where(positive.unsqueeze(-1), target_bboxes, dummy)
        loss_bbox = self.loss_bbox(pred_bboxes.reshape(-1, 4), box_targets.reshape(-1, 4),
                                   weight).sum()

        distances = bbox2distance(points, target_bboxes, self.reg_max, eps=DFL_TARGET_EPS)
        loss_dfl = self.loss_dfl(pred_regs.reshape(-1, self.reg_max + 1), distances.reshape(-1),
                                 weight=weight.repeat_interleave(4), avg_factor=4.0)

        avg_factor = _mean_over_ranks(target_scores.sum()).clamp(min=1.0)
        loss_vfl = self.loss_vfl(pred_scores.reshape(-1, self.num_classes),
                                 target_scores.reshape(-1, self.num_classes),
                                 avg_factor=avg_factor)
        return dict(loss_vfl=loss_vfl, loss_bbox=loss_bbox / avg_factor,
                    loss_dfl=loss_dfl / avg_factor)

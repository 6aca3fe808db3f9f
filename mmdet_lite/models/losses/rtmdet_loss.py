"""RTMDet's training loss: mmdet 3.3.0 ``RTMDetHead.loss_by_feat`` on batched, padded targets."""
import torch
import torch.distributed as dist
from torch import nn

from mmdet_lite.models.assigners.dynamic_soft_label import DynamicSoftLabelAssigner
from mmdet_lite.utils import dist as dist_utils
from mmdet_lite.utils.boxes import anchor_points, distance2bbox

from .giou import GIoULoss
from .quality_focal import QualityFocalLoss

__all__ = ["RTMDetLoss", "reduce_mean"]


def reduce_mean(tensor):
    """mmdet's ``reduce_mean``: the mean of ``tensor`` over all processes (itself alone)."""
    if not dist_utils.is_dist():
        return tensor
    tensor = tensor.clone().div_(dist_utils.get_world_size())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


class RTMDetLoss(nn.Module):
    """Quality focal + GIoU loss of RTMDet's dense head, assigned by ``DynamicSoftLabelAssigner``.

    Priors are the feature-cell corners ``(j * s, i * s)`` (mmdet's
    ``MlvlPointGenerator(offset=0)``) with their stride; the box predictions are ``l, t, r, b``
    distances in input pixels, decoded around them. Assignment uses the detached predictions.
    Both terms are divided by the same average factor ``f``, ``reduce_mean(sum of the positives'
    IoUs)`` clamped at 1, as mmdet does: ``loss_cls = QFL(beta) over all priors / f``,
    ``loss_bbox = loss_weight * sum(IoU_pos * (1 - GIoU_pos)) / f``. (mmdet also divides each
    level's sum by ``1 + float32 eps``: a 1.2e-7 relative difference, left out.)

    forward(cls_scores [(N, C, H_l, W_l)] logits, bbox_preds [(N, 4, H_l, W_l)], targets, strides)
    with ``targets`` the ``TrainCollate`` entries ``gt_bboxes (N, M, 4)`` x1y1x2y2 input pixels,
    ``gt_labels (N, M, 1)`` and ``pad_gt_mask (N, M, 1)`` -> ``dict(total_loss, loss_cls,
    loss_bbox)`` (float32 scalars).
    """

    def __init__(self, num_classes, assigner=None, loss_cls=None, loss_bbox=None):
        super().__init__()
        self.num_classes = int(num_classes)
        self.assigner = DynamicSoftLabelAssigner(**(assigner or {}))
        self.loss_cls = QualityFocalLoss(reduction="sum", **(loss_cls or {}))
        bbox = {"loss_weight": 2.0, **(loss_bbox or {})}
        self.loss_bbox = GIoULoss(eps=1e-7, reduction="sum", **bbox)

    def forward(self, cls_scores, bbox_preds, targets, strides):
        batch = cls_scores[0].shape[0]
        device = cls_scores[0].device
        points, stride_list = anchor_points([s.shape[-2:] for s in cls_scores], strides,
                                            cell_offset=0.0, device=device)
        points = points * stride_list
        flat_cls = torch.cat([s.permute(0, 2, 3, 1).reshape(batch, -1, self.num_classes)
                              for s in cls_scores], 1).float()
        flat_reg = torch.cat([b.permute(0, 2, 3, 1).reshape(batch, -1, 4) for b in bbox_preds],
                             1).float()
        boxes = distance2bbox(points, flat_reg)
        assigned = self.assigner(flat_cls.detach(), boxes.detach(), points, stride_list,
                                 targets["gt_labels"], targets["gt_bboxes"],
                                 targets["pad_gt_mask"])
        avg_factor = reduce_mean(assigned.ious.sum()).clamp(min=1)
        loss_cls = self.loss_cls(flat_cls.reshape(-1, self.num_classes),
                                 assigned.labels.reshape(-1), assigned.ious.reshape(-1))
        positive = assigned.gt_index >= 0
        loss_bbox = self.loss_bbox(boxes[positive], assigned.bboxes[positive],
                                   weight=assigned.ious[positive])
        loss_cls, loss_bbox = loss_cls / avg_factor, loss_bbox / avg_factor
        return dict(total_loss=loss_cls + loss_bbox, loss_cls=loss_cls, loss_bbox=loss_bbox)

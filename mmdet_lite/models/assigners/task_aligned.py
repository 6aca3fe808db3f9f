"""Task-aligned label assignment (TOOD, Feng et al., 2021) as ppdet 2.6.0's TaskAlignedAssigner."""
import torch
from torch import nn

from .utils import (
    empty_assignment,
    gather_targets,
    pairwise_iou,
    points_in_boxes,
    resolve_multiple_gts,
    topk_mask,
)

__all__ = ["TaskAlignedAssigner"]


class TaskAlignedAssigner(nn.Module):
    """TOOD's assigner; PicoHeadV2's dynamic assigner after the static (ATSS) epochs.

    Alignment metric t = s^alpha * IoU^beta, with s the predicted score of the GT's class and IoU
    between the GT and the predicted box. For every GT the `topk` anchors of largest t among those
    whose centre lies inside the GT are positive; an anchor claimed by several GTs goes to the GT of
    highest IoU. The positive's score target is t normalised per GT: t / max_t(GT) * max_IoU(GT).

    Args:
        topk (int): positives per GT at most.
        alpha (float): exponent of the class score.
        beta (float): exponent of the IoU.
        eps (float): added to the per-GT max metric before dividing.

    forward(pred_scores (B, L, C) probabilities, pred_bboxes (B, L, 4) x1y1x2y2,
    anchor_points (L, 2) in the boxes' unit, num_anchors_list (list[int]; unused, API parity),
    gt_labels (B, n, 1), gt_bboxes (B, n, 4), pad_gt_mask (B, n, 1) 1 = real GT, bg_index (int),
    gt_scores (ignored, as in ppdet)) -> assigned_labels (B, L) int64 (bg_index for negatives),
    assigned_bboxes (B, L, 4), assigned_scores (B, L, C) float32.
    """

    def __init__(self, topk=13, alpha=1.0, beta=6.0, eps=1e-9):
        super().__init__()
        self.topk = topk
        self.alpha = alpha
        self.beta = beta
        self.eps = eps

    @torch.no_grad()
    def forward(self, pred_scores, pred_bboxes, anchor_points, num_anchors_list, gt_labels,
                gt_bboxes, pad_gt_mask, bg_index, gt_scores=None):
        batch_size, num_anchors, num_classes = pred_scores.shape
        num_max_boxes = gt_bboxes.shape[1]
        if num_max_boxes == 0:
            return empty_assignment(batch_size, num_anchors, num_classes, bg_index,
                                    pred_scores.device)
        pred_scores, pred_bboxes = pred_scores.float(), pred_bboxes.float()
        gt_bboxes, pad_gt_mask = gt_bboxes.float(), pad_gt_mask.float()

        ious = pairwise_iou(gt_bboxes, pred_bboxes)  # (B, n, L)
        label_index = gt_labels.long().expand(-1, -1, num_anchors)
        cls_scores = torch.gather(pred_scores.transpose(1, 2), 1, label_index)  # (B, n, L)
        metrics = cls_scores.pow(self.alpha) * ious.pow(self.beta)

        is_in_gts = points_in_boxes(anchor_points.float(), gt_bboxes)
        is_in_topk = topk_mask(metrics * is_in_gts, self.topk, largest=True)[1] * pad_gt_mask
        mask_positive = is_in_topk * is_in_gts * pad_gt_mask
        mask_positive = resolve_multiple_gts(mask_positive, ious)

        labels, bboxes, scores, _, _ = gather_targets(
            mask_positive, gt_labels, gt_bboxes, bg_index, num_classes)
        metrics = metrics * mask_positive
        max_metrics = metrics.amax(dim=-1, keepdim=True)
        max_ious = (ious * mask_positive).amax(dim=-1, keepdim=True)
        metrics = metrics / (max_metrics + self.eps) * max_ious
        return labels, bboxes, scores * metrics.amax(dim=-2).unsqueeze(-1)

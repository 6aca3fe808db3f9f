"""mmdet's ``DynamicSoftLabelAssigner`` (RTMDet), vectorised over a batch of padded GTs."""
from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["DynamicSoftLabelAssigner", "SoftLabelAssignment", "bbox_overlaps"]

EPS = 1.0e-7  # mmdet's: log(iou + EPS)


def bbox_overlaps(boxes1, boxes2, eps=1e-6):
    """mmdet's ``bbox_overlaps(mode="iou")``: IoU of every box of ``boxes1 (..., n, 4)`` with every
    box of ``boxes2 (..., m, 4)`` -> ``(..., n, m)``; areas unclipped, union floored at ``eps``."""
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (boxes1[..., 3] - boxes1[..., 1])
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (boxes2[..., 3] - boxes2[..., 1])
    lt = torch.max(boxes1[..., :, None, :2], boxes2[..., None, :, :2])
    rb = torch.min(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area1[..., None] + area2[..., None, :] - overlap
    return overlap / torch.max(union, union.new_tensor([eps]))


class SoftLabelAssignment(NamedTuple):
    """Per-prior targets of a batch: ``gt_index (B, A)`` int64 (-1: background), ``labels (B, A)``
    int64 (``num_classes`` for background), ``bboxes (B, A, 4)`` the assigned GT boxes (zeros for
    background), ``ious (B, A)`` IoU of the prediction with its GT (0 for background)."""

    gt_index: torch.Tensor
    labels: torch.Tensor
    bboxes: torch.Tensor
    ious: torch.Tensor


class DynamicSoftLabelAssigner:
    """RTMDet's label assignment (mmdet 3.3.0 ``DynamicSoftLabelAssigner``) for a whole batch.

    For every image, the priors whose centre lies inside some GT are candidates. The cost of
    candidate ``a`` for GT ``g`` is ``soft_cls_cost + iou_weight * -log(IoU + 1e-7) +
    10 ** (dist(a, centre_g) / stride_a - soft_center_radius)``; the soft classification cost is
    the quality-focal term of the logits against the one-hot label scaled by the IoU. Each GT takes
    its ``k = max(1, int(sum of its top-``topk`` candidate IoUs))`` cheapest candidates; a prior
    taken by several GTs keeps the cheapest. Results equal mmdet's per-image ``assign``.

    The classification cost is summed as ``sum_c neg_c - neg_label + pos_label`` (mmdet sums the
    (candidates, GTs, classes) tensor), so costs agree to float rounding, with (B, A, M) memory.

    ``__call__(pred_scores (B, A, C) logits, pred_bboxes (B, A, 4) x1y1x2y2, priors (A, 2) x y,
    strides (A,) or (A, 1), gt_labels (B, M, 1), gt_bboxes (B, M, 4), pad_gt_mask (B, M, 1))
    -> SoftLabelAssignment``; call it with detached predictions.
    """

    def __init__(self, topk=13, iou_weight=3.0, soft_center_radius=3.0):
        self.topk = int(topk)
        self.iou_weight = float(iou_weight)
        self.soft_center_radius = float(soft_center_radius)

    def _soft_cls_cost(self, pred_scores, gt_labels, ious):
        """(B, A, M): sum over classes of BCE(logit, onehot * IoU) * |onehot * IoU - sigmoid|^2."""
        prob = pred_scores.sigmoid()
        neg = F.binary_cross_entropy_with_logits(pred_scores, torch.zeros_like(pred_scores),
                                                 reduction="none") * prob.pow(2.0)
        index = gt_labels.reshape(gt_labels.shape[0], 1, -1).expand(-1, pred_scores.shape[1], -1)
        logit = torch.gather(pred_scores, 2, index)
        pos = F.binary_cross_entropy_with_logits(logit, ious, reduction="none") * (
            ious - torch.gather(prob, 2, index)).abs().pow(2.0)
        return neg.sum(-1, keepdim=True) - torch.gather(neg, 2, index) + pos

    @torch.no_grad()
    def __call__(self, pred_scores, pred_bboxes, priors, strides, gt_labels, gt_bboxes,
                 pad_gt_mask):
        batch, num_priors, num_classes = pred_scores.shape
        pred_scores, pred_bboxes = pred_scores.float(), pred_bboxes.float()
        gt_bboxes = gt_bboxes.float()
        num_gts = gt_bboxes.shape[1]
        device = pred_scores.device
        if num_gts == 0:
            return SoftLabelAssignment(
                torch.full((batch, num_priors), -1, dtype=torch.long, device=device),
                torch.full((batch, num_priors), num_classes, dtype=torch.long, device=device),
                pred_bboxes.new_zeros(batch, num_priors, 4), pred_bboxes.new_zeros(batch,
                                                                                   num_priors))
        real_gt = pad_gt_mask.reshape(batch, 1, num_gts) > 0
        labels = gt_labels.reshape(batch, num_gts).long().clamp(0, num_classes - 1)
        centers = priors[:, :2].float()
        lt = centers[None, :, None] - gt_bboxes[:, None, :, :2]
        rb = gt_bboxes[:, None, :, 2:] - centers[None, :, None]
        inside = (torch.cat([lt, rb], dim=-1).min(dim=-1).values > 0) & real_gt
        valid = inside.any(dim=-1)  # (B, A): candidate priors

        gt_center = (gt_bboxes[..., :2] + gt_bboxes[..., 2:]) / 2.0
        distance = (centers[None, :, None] - gt_center[:, None]).pow(2).sum(-1).sqrt() / (
            strides.reshape(1, -1, 1).float())
        center_prior = torch.pow(10, distance - self.soft_center_radius)
        ious = bbox_overlaps(pred_bboxes, gt_bboxes)
        iou_cost = -torch.log(ious + EPS) * self.iou_weight
        cls_cost = self._soft_cls_cost(pred_scores, labels, ious)
        usable = valid[..., None] & real_gt
        cost = torch.where(usable, cls_cost + iou_cost + center_prior,
                           torch.full_like(ious, float("inf")))

        candidate_ious = torch.where(valid[..., None], ious, torch.zeros_like(ious))
        top_ious = torch.topk(candidate_ious, min(self.topk, num_priors), dim=1).values
        dynamic_ks = torch.clamp(top_ious.sum(1).int(), min=1)  # (B, M)
        max_k = min(self.topk, num_priors)
        cheapest = torch.topk(cost, max_k, dim=1, largest=False).indices  # (B, k, M)
        take = (torch.arange(max_k, device=device)[None, :, None] < dynamic_ks[:, None])
        matching = torch.zeros_like(ious).scatter_(1, cheapest, take.to(ious.dtype)) > 0
        matching &= usable

        several = matching.sum(-1) > 1
        cheapest_gt = F.one_hot(cost.argmin(dim=-1), num_gts) > 0
        matching = torch.where(several[..., None], cheapest_gt, matching)
        foreground = matching.any(dim=-1)
        gt_index = matching.to(torch.uint8).argmax(dim=-1)
        matched_ious = torch.gather(ious, 2, gt_index[..., None]).squeeze(-1)
        assigned_labels = torch.gather(labels, 1, gt_index)
        assigned_boxes = torch.gather(gt_bboxes, 1, gt_index[..., None].expand(-1, -1, 4))
        zero = torch.zeros_like(matched_ious)
        return SoftLabelAssignment(
            torch.where(foreground, gt_index, torch.full_like(gt_index, -1)),
            torch.where(foreground, assigned_labels, torch.full_like(assigned_labels,
                                                                     num_classes)),
            assigned_boxes * foreground[..., None], torch.where(foreground, matched_ious, zero))

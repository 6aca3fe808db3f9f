"""ATSS label assignment (Zhang et al., 2020) as ppdet 2.6.0's ATSSAssigner computes it."""
import torch
from torch import nn

from .utils import (
    box_centers,
    empty_assignment,
    gather_targets,
    pairwise_iou,
    points_in_boxes,
    resolve_multiple_gts,
    topk_mask,
)

__all__ = ["ATSSAssigner"]


class ATSSAssigner(nn.Module):
    """Adaptive Training Sample Selection; PicoHeadV2's static assigner for the first epochs.

    For every GT: on each level take the `topk` anchors whose centres are nearest to the GT centre;
    among these candidates, keep those whose anchor-box IoU is above mean + std (unbiased) of the
    candidates' IoUs and whose centre lies inside the GT. An anchor claimed by several GTs goes to
    the GT of highest IoU.

    Args:
        topk (int): candidates per level and GT.
        num_classes (int): C, the width of `assigned_scores`.
        force_gt_matching (bool): give every GT its max-IoU anchor (unless GTs share that anchor).
        eps (float): kept for API parity with ppdet.

    forward(anchor_bboxes (L, 4), num_anchors_list (list[int], per level), gt_labels (B, n, 1),
    gt_bboxes (B, n, 4), pad_gt_mask (B, n, 1) 1 = real GT, bg_index (int), gt_scores (B, n, 1) or
    None, pred_bboxes (B, L, 4) or None) -> assigned_labels (B, L) int64, assigned_bboxes (B, L, 4),
    assigned_scores (B, L, C). Boxes are x1y1x2y2 in one common unit (pixels in PicoHeadV2).
    assigned_scores is the one-hot label, times the IoU between the GT and `pred_bboxes` when those
    are given (PicoHeadV2 passes them), else times `gt_scores` when given.
    """

    def __init__(self, topk=9, num_classes=80, force_gt_matching=False, eps=1e-9):
        super().__init__()
        self.topk = topk
        self.num_classes = num_classes
        self.force_gt_matching = force_gt_matching
        self.eps = eps

    def _topk_per_level(self, distances, num_anchors_list, pad_gt_mask):
        is_in_topk, topk_idxs, start = [], [], 0
        for dist in torch.split(distances, list(num_anchors_list), dim=-1):
            idxs, mask = topk_mask(dist, self.topk, largest=False)
            topk_idxs.append(idxs + start)
            is_in_topk.append(mask * pad_gt_mask)
            start += dist.shape[-1]
        return torch.cat(is_in_topk, dim=-1), torch.cat(topk_idxs, dim=-1)

    @torch.no_grad()
    def forward(self, anchor_bboxes, num_anchors_list, gt_labels, gt_bboxes, pad_gt_mask, bg_index,
                gt_scores=None, pred_bboxes=None):
        num_anchors = anchor_bboxes.shape[0]
        batch_size, num_max_boxes = gt_bboxes.shape[:2]
        if num_max_boxes == 0:
            return empty_assignment(batch_size, num_anchors, self.num_classes, bg_index,
                                    anchor_bboxes.device)
        anchor_bboxes, gt_bboxes = anchor_bboxes.float(), gt_bboxes.float()
        pad_gt_mask = pad_gt_mask.float()

        ious = pairwise_iou(gt_bboxes, anchor_bboxes.unsqueeze(0), eps=1e-10)  # (B, n, L)
        anchor_centers = box_centers(anchor_bboxes)
        distances = torch.linalg.vector_norm(
            box_centers(gt_bboxes).unsqueeze(2) - anchor_centers[None, None], dim=-1)
        is_in_topk, topk_idxs = self._topk_per_level(distances, num_anchors_list, pad_gt_mask)

        iou_candidates = ious * is_in_topk
        candidate_ious = torch.gather(iou_candidates, -1, topk_idxs)
        iou_threshold = candidate_ious.mean(-1, keepdim=True) + candidate_ious.std(-1, keepdim=True)
        is_in_topk = torch.where(iou_candidates > iou_threshold, is_in_topk,
                                 torch.zeros_like(is_in_topk))

        is_in_gts = points_in_boxes(anchor_centers, gt_bboxes)
        mask_positive = is_in_topk * is_in_gts * pad_gt_mask
        mask_positive = resolve_multiple_gts(mask_positive, ious)
        if self.force_gt_matching:
            is_max_iou = torch.zeros_like(ious).scatter_(-1, ious.argmax(-1, keepdim=True), 1.0)
            is_max_iou = is_max_iou * pad_gt_mask
            unique_max = (is_max_iou.sum(-2, keepdim=True) == 1).expand_as(is_max_iou)
            mask_positive = torch.where(unique_max, is_max_iou, mask_positive)

        labels, bboxes, scores, gt_index, is_pos = gather_targets(
            mask_positive, gt_labels, gt_bboxes, bg_index, self.num_classes)
        if pred_bboxes is not None:
            pred_ious = pairwise_iou(gt_bboxes, pred_bboxes.float()) * mask_positive
            scores = scores * pred_ious.amax(dim=-2).unsqueeze(-1)
        elif gt_scores is not None:
            gathered = torch.gather(gt_scores.float().squeeze(-1), 1, gt_index)
            gathered = torch.where(is_pos, gathered, torch.zeros_like(gathered))
            scores = scores * gathered.unsqueeze(-1)
        return labels, bboxes, scores

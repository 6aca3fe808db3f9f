"""Tensor helpers shared by the label assigners (ppdet 2.6.0 semantics, batched, no host syncs)."""
import torch
import torch.nn.functional as F

__all__ = ["pad_gt", "pairwise_iou", "box_centers", "points_in_boxes", "topk_mask",
           "resolve_multiple_gts", "gather_targets", "empty_assignment"]


def pad_gt(labels, boxes):
    """Pad per-image ground truths to one batch, as ppdet's PadGT batch transform does.

    Args:
        labels (list[Tensor]): B tensors (n_i,) of class indices.
        boxes (list[Tensor]): B tensors (n_i, 4) x1y1x2y2.
    Returns:
        gt_labels (B, n, 1) int64, gt_bboxes (B, n, 4) float32, pad_gt_mask (B, n, 1) float32
        (1 = real box, 0 = padding), n = max n_i (may be 0). Padded entries are zeros.
    """
    batch, num_max = len(boxes), max((len(b) for b in boxes), default=0)
    device = boxes[0].device if boxes else None
    gt_labels = torch.zeros(batch, num_max, 1, dtype=torch.long, device=device)
    gt_bboxes = torch.zeros(batch, num_max, 4, dtype=torch.float32, device=device)
    pad_gt_mask = torch.zeros(batch, num_max, 1, dtype=torch.float32, device=device)
    for i, (label, box) in enumerate(zip(labels, boxes)):
        n = len(box)
        gt_labels[i, :n, 0] = label.reshape(-1).long()
        gt_bboxes[i, :n] = box.reshape(-1, 4).float()
        pad_gt_mask[i, :n] = 1.0
    return gt_labels, gt_bboxes, pad_gt_mask


def pairwise_iou(boxes1, boxes2, eps=1e-9):
    """IoU of every box of `boxes1` (..., n, 4) with every box of `boxes2` (..., m, 4): (..., n, m).

    x1y1x2y2 boxes; widths and heights are clipped at 0 and `eps` is added to the union, so
    degenerate (padding) boxes give 0 instead of NaN. Leading dims broadcast.
    """
    b1, b2 = boxes1.unsqueeze(-2), boxes2.unsqueeze(-3)
    lt = torch.maximum(b1[..., :2], b2[..., :2])
    rb = torch.minimum(b1[..., 2:], b2[..., 2:])
    overlap = (rb - lt).clamp(min=0).prod(-1)
    area1 = (b1[..., 2:] - b1[..., :2]).clamp(min=0).prod(-1)
    area2 = (b2[..., 2:] - b2[..., :2]).clamp(min=0).prod(-1)
    return overlap / (area1 + area2 - overlap + eps)


def box_centers(boxes):
    """Centres (..., 2) "cx, cy" of x1y1x2y2 boxes (..., 4)."""
    return (boxes[..., :2] + boxes[..., 2:]) / 2


def points_in_boxes(points, boxes, eps=1e-9):
    """(B, n, L) 1.0 where point (L, 2) lies inside box (B, n, 4): its 4 distances are all > eps."""
    pts = points[None, None]
    bxs = boxes.unsqueeze(2)
    ltrb = torch.cat([pts - bxs[..., :2], bxs[..., 2:] - pts], dim=-1)
    return (ltrb.amin(dim=-1) > eps).to(boxes.dtype)


def topk_mask(metrics, k, largest=True):
    """Indices (..., k) of the k best entries along the last dim and their 0/1 mask (..., L).

    Ties are broken towards the lower index (stable sort), so the result is deterministic on every
    device; k is clipped to the dim size.
    """
    k = min(k, metrics.shape[-1])
    idxs = torch.sort(metrics, dim=-1, descending=largest, stable=True)[1][..., :k]
    mask = torch.zeros_like(metrics).scatter_(-1, idxs, 1.0)
    return idxs, mask


def resolve_multiple_gts(mask_positive, ious):
    """Keep one GT per anchor: where an anchor is positive for several GTs, it goes to the GT of
    highest IoU (first one on ties; over ALL GTs, as ppdet does). mask_positive, ious: (B, n, L)."""
    num_gts = mask_positive.shape[-2]
    multiple = (mask_positive.sum(dim=-2, keepdim=True) > 1).expand_as(mask_positive)
    is_max_iou = F.one_hot(ious.argmax(dim=-2), num_gts).permute(0, 2, 1).to(ious.dtype)
    return torch.where(multiple, is_max_iou, mask_positive)


def gather_targets(mask_positive, gt_labels, gt_bboxes, bg_index, num_classes):
    """Per-anchor targets from a one-GT-per-anchor mask (B, n, L).

    Returns:
        assigned_labels (B, L) int64 (bg_index for negatives), assigned_bboxes (B, L, 4) (negatives
        take the image's first GT box, as in ppdet), one_hot (B, L, C) float, gt_index (B, L),
        is_pos (B, L) bool.
    """
    is_pos = mask_positive.sum(dim=-2) > 0
    gt_index = mask_positive.argmax(dim=-2)
    labels = torch.gather(gt_labels.squeeze(-1).long(), 1, gt_index)
    labels = torch.where(is_pos, labels, torch.full_like(labels, bg_index))
    bboxes = torch.gather(gt_bboxes, 1, gt_index.unsqueeze(-1).expand(-1, -1, 4))
    one_hot = F.one_hot(labels, num_classes + 1).to(gt_bboxes.dtype)
    keep = [c for c in range(num_classes + 1) if c != bg_index]
    one_hot = one_hot[..., keep]
    return labels, bboxes, one_hot, gt_index, is_pos


def empty_assignment(batch_size, num_anchors, num_classes, bg_index, device):
    """Targets of a batch without any GT slot (n = 0): every anchor is background."""
    return (torch.full((batch_size, num_anchors), bg_index, dtype=torch.long, device=device),
            torch.zeros(batch_size, num_anchors, 4, device=device),
            torch.zeros(batch_size, num_anchors, num_classes, device=device))

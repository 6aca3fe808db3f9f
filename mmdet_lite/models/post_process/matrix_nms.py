"""Matrix NMS of SOLOv2 (ppdet 2.6.0 ``MaskMatrixNMS``): soft, parallel decay of mask scores."""
import torch

__all__ = ["mask_matrix_nms", "matrix_nms_decay", "MATRIX_NMS_DEFAULTS"]

MATRIX_NMS_DEFAULTS = dict(update_threshold=0.05, pre_nms_top_n=500, post_nms_top_n=100,
                           kernel="gaussian", sigma=2.0)
"""ppdet's ``MaskMatrixNMS`` defaults."""


def _top(scores, top_n):
    """Indices of the scores best first, at most ``top_n`` (Paddle: topk past ``top_n``, else a
    descending argsort)."""
    if scores.shape[0] > top_n:
        return torch.topk(scores, top_n).indices
    return torch.argsort(scores, descending=True)


def matrix_nms_decay(masks, labels, sum_masks, kernel="gaussian", sigma=2.0):
    """The decay factor (..., n) of each of n candidates sorted best first.

    ``masks`` (..., n, P) binary float, ``labels`` (..., n), ``sum_masks`` (..., n) the masks'
    areas; leading dims are a batch (the ONNX graph's images). With IoU_ij of a better candidate
    i over j of the same label and comp_i the largest IoU of i with any candidate better than it,
    the factor of j is ``min_i f(IoU_ij) / f(comp_i)``: gaussian ``f(x) = exp(-sigma x^2)``,
    linear ``1 - x`` (the minimum runs over every row, as Paddle's, rows of no overlap giving
    ``1 / f(comp_i)``). Unions of pixel counts below 1 (two empty masks, only padding candidates
    have them) count as 1, so that they give IoU 0, not NaN.
    """
    inter = masks @ masks.transpose(-1, -2)
    union = sum_masks.unsqueeze(-2) + sum_masks.unsqueeze(-1) - inter
    iou = torch.triu(inter / union.clamp(min=1), diagonal=1)
    same_label = labels.unsqueeze(-2) == labels.unsqueeze(-1)
    decay_iou = iou * torch.triu(same_label.to(iou.dtype), diagonal=1)
    compensate_iou = decay_iou.max(dim=-2).values.unsqueeze(-1).expand_as(decay_iou)
    if kernel == "gaussian":
        ratio = torch.exp(-sigma * decay_iou ** 2) / torch.exp(-sigma * compensate_iou ** 2)
    elif kernel == "linear":
        ratio = (1 - decay_iou) / (1 - compensate_iou)
    else:
        raise ValueError(f"matrix NMS kernel must be 'gaussian' or 'linear', got {kernel!r}")
    return ratio.min(dim=-2).values


def mask_matrix_nms(seg_masks, labels, scores, sum_masks, update_threshold=0.05,
                    pre_nms_top_n=500, post_nms_top_n=100, kernel="gaussian", sigma=2.0):
    """Matrix NMS over n mask candidates -> ``(keep (k,) int64, scores (k,))``.

    ``seg_masks`` (n, H, W) binary (bool or float), ``labels`` (n,), ``scores`` (n,),
    ``sum_masks`` (n,) float areas. The best ``pre_nms_top_n`` by score are decayed
    (``matrix_nms_decay``); those whose decayed score is at least ``update_threshold`` are kept,
    the best ``post_nms_top_n`` of them returned best first: ``keep`` indexes the inputs,
    ``scores`` are the decayed scores. Paddle appends one extra entry (its "fake" candidate, or a
    duplicate) to avoid empty outputs; it is not returned here.
    """
    if scores.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=scores.device), scores
    order = _top(scores, pre_nms_top_n)
    masks = seg_masks[order].flatten(1).to(scores.dtype)
    decay = matrix_nms_decay(masks, labels[order], sum_masks[order].to(scores.dtype), kernel,
                             sigma)
    decayed = scores[order] * decay
    kept = torch.nonzero(decayed >= update_threshold).squeeze(1)
    best = _top(decayed[kept], post_nms_top_n)
    return order[kept[best]], decayed[kept[best]]

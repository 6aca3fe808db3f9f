"""Paddle's multi-class NMS (``multiclass_nms3`` with ``normalized=True``) on torchvision ops."""
import torch
import torch.onnx.operators
from torchvision.ops import batched_nms


def multiclass_nms(boxes, scores, score_threshold=0.025, nms_top_k=1000, keep_top_k=100,
                   nms_threshold=0.6):
    """Per-class NMS then a global top-k, as PaddleDetection's ``MultiClassNMS``.

    ``boxes (A, 4)`` x1 y1 x2 y2 shared by every class, ``scores (A, C)``. For each class: keep
    scores ``> score_threshold``, the ``nms_top_k`` best of them (ties: lower index first), then
    greedy NMS suppressing IoU ``> nms_threshold`` (areas without the ``+1``). Over all classes the
    ``keep_top_k`` best detections survive; one box may appear under several labels.
    ``nms_top_k`` / ``keep_top_k`` of -1 mean no limit.

    Returns ``boxes (K, 4)``, ``scores (K,)``, ``labels (K,)`` int64, ordered as Paddle's output:
    by label, then by descending score.
    """
    # Class-major candidate list: row c holds class c's best scores, ties by lower index first.
    class_scores, order = _sort_descending(scores.t(), nms_top_k)
    labels = torch.arange(scores.shape[1], device=scores.device).unsqueeze(1).expand_as(order)
    valid = class_scores > score_threshold
    cand_scores, cand_index, cand_labels = class_scores[valid], order[valid], labels[valid]
    cand_boxes = boxes[cand_index]

    # Exact IoUs: batched_nms offsets boxes per class, which costs float32 precision (kept in
    # ONNX graphs, whose NonMaxSuppression is float32, and on MPS, which has no float64).
    exact = not torch.onnx.is_in_onnx_export() and cand_boxes.device.type != "mps"
    nms_dtype = torch.float64 if exact else cand_boxes.dtype
    keep = batched_nms(cand_boxes.to(nms_dtype), cand_scores.to(nms_dtype), cand_labels,
                       nms_threshold)
    # Candidate order is (label, score desc, index), i.e. Paddle's order; the global top-k is a
    # stable sort by score over that order.
    keep = keep.sort().values
    if keep_top_k > -1:
        best = _sort_descending(cand_scores[keep], keep_top_k)[1]
        keep = keep[best.sort().values]
    return cand_boxes[keep], cand_scores[keep], cand_labels[keep]


def _sort_descending(values, k):
    """The ``k`` (all if -1 or more than there are) largest values along the last dim and their
    indices; equal values keep their order (stable sort; ONNX TopK has the same tie rule)."""
    if torch.onnx.is_in_onnx_export():
        length = torch.onnx.operators.shape_as_tensor(values)[-1]
        return values.topk(length if k < 0 else torch.clamp(length, max=k), dim=-1)
    values, indices = values.sort(dim=-1, descending=True, stable=True)
    return (values, indices) if k < 0 else (values[..., :k], indices[..., :k])

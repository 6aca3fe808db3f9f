"""Multi-class NMS as ONNX ``NonMaxSuppression`` (PaddleDetection's ``MultiClassNMS`` semantics)
for a detector's ``onnx_postprocess``: eager PyTorch runs the same computation with torchvision."""
import torch
import torchvision

__all__ = ["onnx_multiclass_nms"]

_INT32_MAX = 2 ** 31 - 1


class _NonMaxSuppression(torch.autograd.Function):
    """ONNX ``NonMaxSuppression`` on boxes (B, K, 4) and scores (B, 1, K) -> (M, 3) int64 rows
    ``[batch, 0, box index]``, each batch's kept boxes best first.

    Eager PyTorch computes the same with torchvision; the export emits the ONNX op."""

    @staticmethod
    def forward(ctx, boxes, scores, max_per_class, iou_threshold, score_threshold):
        rows = []
        for b in range(boxes.shape[0]):
            class_scores = scores[b, 0]
            idx = torch.nonzero(class_scores > score_threshold).flatten()
            # Ties keep the lower index first, as onnxruntime (and Paddle) do.
            idx = idx[class_scores[idx].sort(descending=True, stable=True).indices]
            rank = torch.arange(len(idx), 0, -1, dtype=torch.float32)
            keep = idx[torchvision.ops.nms(boxes[b, idx].float(), rank, iou_threshold)]
            keep = keep[:max_per_class]
            rows.append(torch.stack([torch.full_like(keep, b), torch.zeros_like(keep), keep], 1))
        return torch.cat(rows) if rows else torch.zeros((0, 3), dtype=torch.int64)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class, iou_threshold, score_threshold):
        def const(value, dtype):
            return g.op("Constant", value_t=torch.tensor([value], dtype=dtype))

        return g.op("NonMaxSuppression", boxes, scores, const(max_per_class, torch.int64),
                    const(iou_threshold, torch.float32), const(score_threshold, torch.float32))


def onnx_multiclass_nms(boxes, scores, score_threshold=0.025, nms_top_k=1000, keep_top_k=100,
                        nms_threshold=0.6, pad_top_k=False):
    """Export-friendly multi-class NMS over a batch.

    ``boxes (N, A, 4)``, ``scores (N, A, C)`` -> ``boxes (M, 4)``, ``scores (M,)``, ``labels (M,)``,
    ``batch_indices (M,)``, grouped by image, best first. ``pad_top_k`` pads the anchors to
    ``nms_top_k`` so that the graph holds for any number of anchors (dynamic input sizes).
    """
    num_images, num_anchors, num_classes = scores.shape
    top_k = num_anchors if nms_top_k < 0 else nms_top_k
    if pad_top_k and nms_top_k > 0:
        scores = torch.cat([scores, scores.new_full((num_images, nms_top_k, num_classes), -1.0)], 1)
        boxes = torch.cat([boxes, boxes.new_zeros((num_images, nms_top_k, 4))], 1)
    else:
        top_k = min(top_k, num_anchors)
    # Equal scores keep the lower index first, as in Paddle: ONNX's TopK does so by definition,
    # eager PyTorch needs a stable sort (which the exporter does not support).
    exporting = torch.onnx.is_in_onnx_export()
    class_scores = scores.transpose(1, 2)
    if exporting:
        top_scores, top_idx = class_scores.topk(top_k, dim=2)
    else:
        top_scores, top_idx = class_scores.sort(dim=2, descending=True, stable=True)
        top_scores, top_idx = top_scores[:, :, :top_k], top_idx[:, :, :top_k]  # (N, C, k)
    flat_idx = top_idx.reshape(num_images, -1, 1).expand(-1, -1, 4)
    cand_boxes = boxes.gather(1, flat_idx).reshape(-1, top_k, 4)  # (N * C, k, 4)
    cand_scores = top_scores.reshape(-1, 1, top_k)
    max_per_class = keep_top_k if keep_top_k > 0 else _INT32_MAX
    selected = _NonMaxSuppression.apply(cand_boxes, cand_scores, max_per_class,
                                        float(nms_threshold), float(score_threshold))
    group, index = selected[:, 0], selected[:, 2]
    det_scores = cand_scores[group, 0, index]
    det_boxes = cand_boxes[group, index]
    det_labels = group % num_classes
    det_images = torch.div(group, num_classes, rounding_mode="floor")
    # Group by image, best first; float64 keeps nearby scores apart.
    key = det_images.to(torch.float64) * 4.0 - det_scores.to(torch.float64)
    order = torch.argsort(key) if exporting else key.sort(stable=True).indices
    det_boxes, det_scores = det_boxes[order], det_scores[order]
    det_labels, det_images = det_labels[order], det_images[order]
    if keep_top_k > 0:
        image_ids = torch.arange(num_images, device=scores.device).unsqueeze(0)
        one_hot = (det_images.unsqueeze(1) == image_ids).to(torch.int64)  # (M, N)
        rank = (one_hot.cumsum(0) * one_hot).sum(1) - 1  # position within its image
        keep = rank < keep_top_k
        det_boxes, det_scores = det_boxes[keep], det_scores[keep]
        det_labels, det_images = det_labels[keep], det_images[keep]
    return det_boxes, det_scores, det_labels, det_images

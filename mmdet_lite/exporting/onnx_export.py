"""ONNX export of a detector, with or without Paddle-style multi-class NMS inside the graph.

With post-processing the graph has one input and four outputs:
    images: float32 (N, 3, H, W), RGB, 0..255, already resized to the test size (no normalisation:
        the model normalises inside). Resize as ``exp.get_test_transform()`` does.
    boxes: float32 (M, 4) x1 y1 x2 y2 in INPUT pixels (of the H x W image fed to the graph); divide
        x by scale_x and y by scale_y (scale = test size / original size) for original pixels.
    scores: float32 (M,); labels: int64 (M,) contiguous class indices;
    batch_indices: int64 (M,) the image of each detection.
    Detections are grouped by image, best score first, at most ``keep_top_k`` per image.
Without post-processing (``--no-postprocess``) the outputs are the head's raw
``scores (N, A, C)`` and ``bboxes (N, A, 4)`` (input pixels).

The NMS is ONNX's ``NonMaxSuppression`` run per (image, class) over each class's ``nms_top_k`` best
anchors with ``score > score_threshold`` and IoU ``> nms_threshold``, then a per-image top
``keep_top_k``: the semantics of PaddleDetection's ``MultiClassNMS`` (``normalized=True``).

Exporter: the TorchScript-based ``torch.onnx.export(..., dynamo=False)``. It emits the
``NonMaxSuppression`` op from this module's symbolic at any opset >= 11; the dynamo exporter of
torch 2.15 needs opset >= 18 and fails on ``torchvision.ops.batched_nms``'s data-dependent branch.
"""
import json
import warnings

import numpy as np
import torch
import torch.nn as nn
import torchvision

from mmdet_lite.utils.errors import UserError

__all__ = ["ONNXDetector", "onnx_multiclass_nms", "export_onnx", "run_onnx", "compare_outputs",
           "POST_OUTPUTS", "RAW_OUTPUTS"]

POST_OUTPUTS = ("boxes", "scores", "labels", "batch_indices")
RAW_OUTPUTS = ("scores", "bboxes")
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


class ONNXDetector(nn.Module):
    """The graph that is exported: ``images (N, 3, H, W)`` 0..255 RGB -> ``POST_OUTPUTS`` (with
    ``postprocess``) or the raw ``(scores (N, A, C), bboxes (N, A, 4))``."""

    def __init__(self, model, nms=None, postprocess=True, dynamic=False):
        super().__init__()
        self.model = model
        self.nms = dict(nms or {})
        self.postprocess = postprocess
        self.dynamic = dynamic

    def forward(self, images):
        scores, bboxes = self.model(images)
        if not self.postprocess:
            return scores, bboxes
        return onnx_multiclass_nms(bboxes, scores, pad_top_k=self.dynamic, **self.nms)


def _model_nms(model):
    nms = getattr(getattr(model, "head", None), "nms", None)
    if not isinstance(nms, dict):
        raise UserError("this model has no head.nms settings: export it with --no-postprocess")
    return {k: nms[k] for k in ("score_threshold", "nms_top_k", "keep_top_k", "nms_threshold")}


def export_onnx(model, path, test_size, postprocess=True, dynamic=False, opset=17, batch_size=1,
                metadata=None):
    """Export ``model`` (eval mode, CPU) to ``path``; return the exported ``ONNXDetector``.

    ``test_size`` (h, w) is the traced input size; ``dynamic`` makes batch, height and width
    dynamic. ``metadata`` (str -> JSON-able) is stored in the model's ``metadata_props``.
    """
    import onnx

    if opset < 11:
        raise UserError(f"--opset {opset}: NonMaxSuppression needs opset 11 or newer")
    module = ONNXDetector(model.eval(), _model_nms(model) if postprocess else None, postprocess,
                          dynamic).eval()
    h, w = test_size
    dummy = torch.randint(0, 256, (batch_size, 3, h, w), generator=torch.Generator().manual_seed(0))
    outputs = POST_OUTPUTS if postprocess else RAW_OUTPUTS
    axes = {}
    if dynamic:
        axes["images"] = {0: "batch", 2: "height", 3: "width"}
        if not postprocess:
            axes.update(scores={0: "batch", 1: "anchors"}, bboxes={0: "batch", 1: "anchors"})
    if postprocess:
        axes.update({name: {0: "detections"} for name in outputs})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (dummy.float(),), str(path), dynamo=False,
                              opset_version=opset, input_names=["images"],
                              output_names=list(outputs), dynamic_axes=axes or None,
                              do_constant_folding=True)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    info = dict(postprocess=postprocess, test_size=list(test_size),
                box_format="x1y1x2y2 input pixels", **(metadata or {}))
    for key, value in info.items():
        proto.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(proto, str(path))
    return module


def run_onnx(path, images):
    """Run an exported model with onnxruntime (CPU) on ``images`` (N, 3, H, W) float32 0..255."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": np.ascontiguousarray(images, dtype=np.float32)})


def _sorted_dets(outputs):
    boxes, scores, labels, images = (np.asarray(o) for o in outputs)
    order = np.lexsort((boxes[:, 0], -scores, labels, images)) if len(scores) else np.arange(0)
    return [a[order] for a in (boxes, scores, labels, images)]


def compare_outputs(reference, onnx_outputs, postprocess=True):
    """Largest absolute difference between PyTorch and onnxruntime outputs (``inf`` when the
    detection counts differ). Detections are compared sorted by image, label, score."""
    ref = [t.detach().cpu().numpy() for t in reference]
    got = [np.asarray(o) for o in onnx_outputs]
    if postprocess:
        if len(ref[1]) != len(got[1]):
            return float("inf")
        ref, got = _sorted_dets(ref), _sorted_dets(got)
    diffs = [float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0
             for a, b in zip(ref, got)]
    return max(diffs) if diffs else 0.0

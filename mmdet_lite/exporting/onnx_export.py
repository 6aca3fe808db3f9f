"""ONNX export of a detector, with or without its post-processing inside the graph.

The graph has one input:
    images: float32 (N, 3, H, W), RGB, 0..255, already resized to the test size (no normalisation:
        the model normalises inside). Resize as ``exp.get_test_transform()`` does.
With post-processing its outputs are the ones the model declares in ``onnx_post_outputs`` (name ->
description, in graph order). The box detectors (PicoDet, RT-DETR) declare
``mmdet_lite.models.architectures.base.BOX_ONNX_OUTPUTS``:
    boxes: float32 (M, 4) x1 y1 x2 y2 in INPUT pixels (of the H x W image fed to the graph),
        clipped to it (as Paddle's ``BBoxPostProcess``); divide x by scale_x and y by scale_y
        (scale = test size / original size) for original pixels.
    scores: float32 (M,); labels: int64 (M,) contiguous class indices;
    batch_indices: int64 (M,) the image of each detection.
    Detections are grouped by image, best score first.
Without post-processing (``--no-postprocess``) the outputs are the model's raw eval outputs, named
and described by the model's ``onnx_raw_outputs`` (PicoDet: ``scores (N, A, C)``, ``bboxes
(N, A, 4)`` input pixels; RT-DETR: ``logits (N, Q, C)``, ``boxes (N, Q, 4)`` normalised cxcywh).

The detector owns what differs (``check_onnx_export(opset, dynamic, postprocess)``,
``onnx_postprocess(outputs, images, dynamic)``, ``onnx_raw_outputs``, ``onnx_post_outputs``):
- PicoDet: ONNX's ``NonMaxSuppression`` run per (image, class) over each class's ``nms_top_k`` best
  anchors with ``score > score_threshold`` and IoU ``> nms_threshold``, then a per-image top
  ``keep_top_k``: the semantics of PaddleDetection's ``MultiClassNMS`` (``normalized=True``;
  ``mmdet_lite.models.post_process.onnx_nms``); opset >= 11; ``--dynamic`` batch, height and width.
- RT-DETR: Paddle's ``DETRPostProcess`` (sigmoid, top ``num_top_queries`` over queries x classes,
  no NMS, no score threshold: N * K detections); opset >= 16 (GridSample); ``--dynamic`` batch,
  height and width (multiples of 32, with at least ``num_queries`` encoder positions), the raw
  outputs' query axis stays fixed.

- SOLOv2: ``solov2_onnx_postprocess`` (``mmdet_lite.models.post_process``): Paddle's steps
  through Matrix NMS, at most ``post_nms_top_n`` instances per image; outputs ``masks (M, H, W)``
  bool at the (padded) input size, ``scores``, ``labels``, ``batch_indices``; opset >= 14
  (``Trilu``), >= 19 with DCNv2 (``DeformConv``, ``mmdet_lite.exporting.deform_conv_onnx``);
  ``--dynamic`` batch, height and width (multiples of 32).

Exporter: the TorchScript-based ``torch.onnx.export(..., dynamo=False)``. It emits the
``NonMaxSuppression`` op from ``onnx_nms``'s symbolic at any opset >= 11; the dynamo exporter of
torch 2.15 needs opset >= 18 and fails on ``torchvision.ops.batched_nms``'s data-dependent branch.
"""
import json
import warnings

import numpy as np
import torch
import torch.nn as nn

from mmdet_lite.exporting.deform_conv_onnx import register_deform_conv_onnx
from mmdet_lite.models.architectures.base import BOX_ONNX_OUTPUTS
from mmdet_lite.utils.errors import UserError

__all__ = ["ONNXDetector", "clip_boxes", "export_onnx", "run_onnx", "compare_outputs"]


class ONNXDetector(nn.Module):
    """The graph that is exported: ``images (N, 3, H, W)`` 0..255 RGB -> the model's
    ``onnx_postprocess`` outputs (``onnx_post_outputs``, with ``postprocess``; a ``boxes`` output
    is clipped to the input image) or its raw eval outputs (``onnx_raw_outputs``)."""

    def __init__(self, model, postprocess=True, dynamic=False):
        super().__init__()
        self.model = model
        self.postprocess = postprocess
        self.dynamic = dynamic

    def forward(self, images):
        outputs = self.model(images)
        if not self.postprocess:
            return tuple(outputs)
        outputs = tuple(self.model.onnx_postprocess(outputs, images, dynamic=self.dynamic))
        declared = list(self.model.onnx_post_outputs)
        if len(outputs) != len(declared):
            raise ValueError(f"{type(self.model).__name__}.onnx_postprocess returned "
                             f"{len(outputs)} tensors but declares {declared}")
        if "boxes" in declared:
            k = declared.index("boxes")
            outputs = outputs[:k] + (clip_boxes(outputs[k], images.shape[-2:]),) + outputs[k + 1:]
        return outputs


def clip_boxes(boxes, image_hw):
    """x1 y1 x2 y2 ``boxes (..., 4)`` clipped to ``[0, w] x [0, h]`` of ``image_hw`` (h, w): the
    traced input's size, so the graph clips for any input size."""
    h, w = (torch.as_tensor(v, dtype=boxes.dtype, device=boxes.device) for v in image_hw)
    zero = torch.zeros((), dtype=boxes.dtype, device=boxes.device)
    x = torch.minimum(torch.maximum(boxes[..., 0::2], zero), w)
    y = torch.minimum(torch.maximum(boxes[..., 1::2], zero), h)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


def export_onnx(model, path, test_size, postprocess=True, dynamic=False, opset=17, batch_size=1,
                metadata=None):
    """Export ``model`` (eval mode, CPU) to ``path``; return the exported ``ONNXDetector``.

    ``test_size`` (h, w) is the traced input size; ``dynamic`` makes batch, height and width
    dynamic where the model allows it (``model.check_onnx_export`` raises ``UserError``
    otherwise); the raw outputs' dynamic axes are ``model.onnx_raw_dynamic_axes``, the
    post-processed ones' first axis is ``detections``, plus ``model.onnx_output_dynamic_axes``
    with ``dynamic``. The outputs and their descriptions (stored
    as the ``outputs`` metadata) are the model's ``onnx_post_outputs`` (with ``postprocess``) or
    ``onnx_raw_outputs``. ``metadata`` (str -> JSON-able) is stored in the model's
    ``metadata_props``.
    """
    import onnx

    model.check_onnx_export(opset, dynamic, postprocess)
    register_deform_conv_onnx()
    module = ONNXDetector(model.eval(), postprocess, dynamic).eval()
    h, w = test_size
    dummy = torch.randint(0, 256, (batch_size, 3, h, w), generator=torch.Generator().manual_seed(0))
    described = dict(model.onnx_post_outputs if postprocess else model.onnx_raw_outputs)
    outputs = tuple(described)
    axes = {}
    if dynamic:
        axes["images"] = {0: "batch", 2: "height", 3: "width"}
        if not postprocess:
            axes.update({name: dict(model.onnx_raw_dynamic_axes) for name in outputs})
    if postprocess:
        axes.update({name: {0: "detections"} for name in outputs})
    if dynamic:
        for name, extra in model.onnx_output_dynamic_axes.items():
            if name in outputs:
                axes[name] = {**axes.get(name, {}), **extra}
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
    with torch.no_grad():
        _pin_static_dims(proto, dict(zip(outputs, module(dummy.float()))), axes)
    onnx.checker.check_model(proto)
    info = dict(postprocess=postprocess, test_size=list(test_size), outputs=described,
                **(metadata or {}))
    if postprocess and "boxes" in described:
        info["box_format"] = "x1y1x2y2 input pixels"
    for key, value in info.items():
        proto.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(proto, str(path))
    return module


def _pin_static_dims(proto, traced, axes):
    """Set the graph outputs' dims: ``axes`` names (output -> {dim: name}) on the dynamic ones, the
    sizes in ``traced`` (output -> tensor) on the others, which the exporter's shape inference
    loses behind shape-computed ops (``Expand``) and names ``<Op><output>_dim_<i>``."""
    for value in proto.graph.output:
        dims, sizes = value.type.tensor_type.shape.dim, traced[value.name].shape
        if len(dims) != len(sizes):
            del dims[:]
            for _ in sizes:
                dims.add()
        for i, size in enumerate(sizes):
            if i in axes.get(value.name, {}):
                dims[i].dim_param = axes[value.name][i]
            else:
                dims[i].dim_value = int(size)


def run_onnx(path, images):
    """Run an exported model with onnxruntime (CPU) on ``images`` (N, 3, H, W) float32 0..255."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": np.ascontiguousarray(images, dtype=np.float32)})


_DETECTION_FIELDS = tuple(BOX_ONNX_OUTPUTS)


def _box_distance(a, b):
    """(M, 4) and (K, 4) boxes -> (M, K) largest coordinate difference."""
    return np.abs(a[:, None] - b[None]).max(-1)


def _mask_distance(a, b):
    """(M, P) and (K, P) bool masks -> (M, K) ``1 - IoU`` (two empty masks: 0)."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None] - inter
    return 1.0 - np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def _as_detections(outputs, names):
    """``(geometry, scores, labels, batch_indices)`` of post-processed outputs named ``names``:
    ``boxes`` (M, 4), else ``masks`` flattened to (M, P) (other outputs are ignored)."""
    by_name = dict(zip(names, (np.asarray(o) for o in outputs)))
    scores, labels, images = (by_name[name] for name in _DETECTION_FIELDS[1:])
    if "boxes" in by_name:
        geometry = by_name["boxes"].astype(np.float64).reshape(-1, 4)
    else:
        masks = by_name["masks"]
        geometry = masks.reshape(len(scores), int(np.prod(masks.shape[1:])))
    return geometry, scores.astype(np.float64), labels, images


def _compare_detections(ref, got, score_tol, distance):
    """Largest difference between two detection sets of one image (see ``compare_outputs``);
    ``distance`` of two geometry arrays: ``_box_distance`` or ``_mask_distance``."""
    (rb, rs, rl), (gb, gs, gl) = ref, got
    if len(rs) != len(gs):
        return float("inf")
    if not len(rs):
        return 0.0
    worst = float(np.abs(np.sort(rs) - np.sort(gs)).max())
    box_diff = distance(rb, gb)  # (M, M)
    partner = (rl[:, None] == gl[None]) & (np.abs(rs[:, None] - gs[None]) <= score_tol)
    box_diff = np.where(partner, box_diff, np.inf).min(1)
    # A detection scoring within ``score_tol`` of the lowest kept one may be swapped for another
    # candidate of nearly the same score (a top-k or NMS tie): it needs no partner.
    at_boundary = rs <= rs.min() + score_tol
    box_diff = box_diff[~(np.isinf(box_diff) & at_boundary)]
    return max(worst, float(box_diff.max())) if box_diff.size else worst


def _row_set_diff(ref, got, chunk=256):
    """Raw outputs ``(N, R, ...)`` compared as per-image sets of rows (a DETR's queries come out
    of a top-k, whose near-ties may order them differently): the largest distance from a row of
    either side to the closest row of the other (identical queries may repeat)."""
    if any(a.ndim < 2 or a.shape[:2] != ref[0].shape[:2] for a in ref):
        return float("inf")
    n, rows = ref[0].shape[:2]
    flat_ref = np.concatenate([a.reshape(n, rows, -1) for a in ref], -1).astype(np.float64)
    flat_got = np.concatenate([b.reshape(n, rows, -1) for b in got], -1).astype(np.float64)
    worst = 0.0
    for r, g in zip(flat_ref, flat_got):
        for a, b in ((r, g), (g, r)):
            for start in range(0, rows, chunk):
                diff = np.abs(a[start:start + chunk, None] - b[None]).max(-1)
                worst = max(worst, float(diff.min(1).max()))
    return worst


def compare_outputs(reference, onnx_outputs, postprocess=True, score_tol=1e-4,
                    names=_DETECTION_FIELDS):
    """Largest absolute difference between PyTorch and onnxruntime outputs.

    Raw outputs are compared element by element, or, when that differs by more than
    ``score_tol``, as per-image sets of rows (``_row_set_diff``: DETR queries). Detections are
    compared per image as sets: the sorted scores element by element, and each PyTorch detection
    against the ONNX detection of the same label, a score within ``score_tol`` and the closest
    box (or, without boxes, mask: the distance is then ``1 - IoU``), so that near-equal scores
    may come in another order. ``inf`` when an image's detection counts differ or a detection
    has no partner (except near the lowest kept score, where ties may swap candidates).
    ``names`` are the post-processed outputs' names (the model's ``onnx_post_outputs``): the
    detections are read from its ``boxes`` (or ``masks``), ``scores``, ``labels`` and
    ``batch_indices``; other outputs are not compared."""
    ref = [t.detach().cpu().numpy() for t in reference]
    got = [np.asarray(o) for o in onnx_outputs]
    if not postprocess:
        if [a.shape for a in ref] != [b.shape for b in got]:
            return float("inf")
        diffs = [float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size
                 else 0.0 for a, b in zip(ref, got)]
        worst = max(diffs) if diffs else 0.0
        return min(worst, _row_set_diff(ref, got)) if worst > score_tol else worst
    ref, got = _as_detections(ref, names), _as_detections(got, names)
    distance = _box_distance if "boxes" in names else _mask_distance
    worst = 0.0
    for image in np.union1d(ref[3], got[3]):
        pick = [tuple(a[d[3] == image] for a in d[:3]) for d in (ref, got)]
        worst = max(worst, _compare_detections(*pick, score_tol, distance))
    return worst

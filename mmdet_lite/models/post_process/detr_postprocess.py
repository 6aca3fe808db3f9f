"""PaddleDetection's ``DETRPostProcess``: top-k over queries x classes, no NMS (ONNX-exportable)."""
import torch
from torchvision.ops import box_convert

from mmdet_lite.models.post_process.detections import Detections


def detr_topk(logits, boxes, out_size, num_top_queries=300, use_focal_loss=True):
    """The ``num_top_queries`` best detections per image, boxes scaled to ``out_size``.

    ``logits (B, Q, C)`` (C includes a trailing no-object class when ``use_focal_loss`` is False),
    ``boxes (B, Q, 4)`` normalised cxcywh, ``out_size (B, 2)`` the (h, w) that a normalised box
    spans. Focal (RT-DETR): sigmoid scores, top-k over all Q*C pairs (a query may give several
    labels). Softmax: best class per query, then top-k queries when ``Q > num_top_queries``.
    Returns ``boxes (B, K, 4)`` x1y1x2y2 in ``out_size`` units, ``scores (B, K)``, ``labels (B, K)``
    int64, by descending score. Only batched tensor ops: the same code runs in the ONNX graph.
    """
    out_shape = out_size.to(boxes.dtype).flip(1).repeat(1, 2).unsqueeze(1)
    bbox_pred = box_convert(boxes, "cxcywh", "xyxy") * out_shape
    num_classes = logits.shape[-1]
    if use_focal_loss:
        k = min(num_top_queries, logits.shape[1] * num_classes)
        scores, index = torch.topk(logits.sigmoid().flatten(1), k, dim=-1)
        labels = index % num_classes
        query = torch.div(index, num_classes, rounding_mode="floor")
    else:
        scores, labels = logits.softmax(-1)[..., :-1].max(-1)
        query = torch.arange(logits.shape[1], device=logits.device).expand(logits.shape[0], -1)
        if logits.shape[1] > num_top_queries:
            scores, query = torch.topk(scores, num_top_queries, dim=-1)
            labels = labels.gather(1, query)
    bbox_pred = bbox_pred.gather(1, query.unsqueeze(-1).expand(-1, -1, 4))
    return bbox_pred, scores, labels.to(torch.int64)


def detr_postprocess(logits, boxes, im_shape, scale_factor, num_top_queries=300,
                     use_focal_loss=True):
    """Decode DETR outputs into the ``num_top_queries`` best detections of each image, in
    original pixels: Paddle's ``DETRPostProcess`` (``bbox_decode_type='origin'``).

    ``logits (B, Q, C)``, ``boxes (B, Q, 4)`` normalised cxcywh, ``im_shape (B, 2)`` the network
    input's (h, w) before padding, ``scale_factor (B, 2)`` (scale_y, scale_x) = resized /
    original. As Paddle, the original size is ``floor(im_shape / scale_factor + 0.5)`` and the
    normalised boxes are scaled by it. Returns a list of B ``Detections`` (float32 boxes and
    scores, by descending score; see ``detr_topk``).
    """
    im_shape = im_shape.to(boxes.dtype)
    origin_shape = torch.floor(im_shape / scale_factor.to(boxes.dtype) + 0.5)
    boxes, scores, labels = detr_topk(logits, boxes, origin_shape, num_top_queries, use_focal_loss)
    return Detections.unbatch(boxes.float(), scores.float(), labels)

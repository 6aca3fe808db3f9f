"""Training targets of a batch: ppdet's ``PadGT`` and the DETR box encoding."""
import numpy as np

__all__ = ["pad_gt", "normalize_boxes_cxcywh"]


def pad_gt(samples):
    """ppdet ``PadGT``: pad every sample's instances to the batch's largest count ``n``.

    Returns a dict of numpy arrays: ``gt_bboxes`` (B, n, 4) float32, ``gt_labels`` (B, n, 1)
    int64, ``pad_gt_mask`` (B, n, 1) float32 (1 for a real instance, 0 for padding) and, when
    every sample has ``masks`` (all of one image size H x W, as after the batch resize),
    ``gt_masks`` (B, n, H, W) uint8. ``n`` may be 0.
    """
    num = max((len(s["boxes"]) for s in samples), default=0)
    batch = len(samples)
    out = dict(gt_bboxes=np.zeros((batch, num, 4), dtype=np.float32),
               gt_labels=np.zeros((batch, num, 1), dtype=np.int64),
               pad_gt_mask=np.zeros((batch, num, 1), dtype=np.float32))
    with_masks = bool(samples) and all("masks" in s for s in samples)
    if with_masks:
        height, width = samples[0]["image"].shape[:2]
        out["gt_masks"] = np.zeros((batch, num, height, width), dtype=np.uint8)
    for i, s in enumerate(samples):
        k = len(s["boxes"])
        out["gt_bboxes"][i, :k] = s["boxes"]
        out["gt_labels"][i, :k, 0] = s["labels"]
        out["pad_gt_mask"][i, :k] = 1.0
        if with_masks:
            out["gt_masks"][i, :k] = s["masks"]
    return out


def normalize_boxes_cxcywh(boxes, height, width):
    """ppdet ``NormalizeBox`` then ``BboxXYXY2XYWH`` in float32: x1y1x2y2 pixels (n, 4) of an
    image ``height x width`` -> normalised cx, cy, w, h (n, 4)."""
    boxes = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    boxes[:, 0::2] /= np.float32(width)
    boxes[:, 1::2] /= np.float32(height)
    boxes[:, 2:4] = boxes[:, 2:4] - boxes[:, :2]
    boxes[:, :2] = boxes[:, :2] + boxes[:, 2:4] / np.float32(2.0)
    return boxes

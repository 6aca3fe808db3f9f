"""SOLOv2's post-processing as ppdet 2.6.0's ``SOLOv2Head.get_seg_single``, for any batch size."""
import torch
import torch.nn.functional as F

from mmdet_lite.models.post_process.detections import Detections
from mmdet_lite.models.post_process.matrix_nms import MATRIX_NMS_DEFAULTS, mask_matrix_nms

__all__ = ["solov2_postprocess", "solov2_image_detections", "masks_to_boxes", "paddle_orig_size"]

# Masks are resized to the original size this many at a time (bounds the float buffers).
_MASK_CHUNK = 16


def masks_to_boxes(masks):
    """Bool masks (K, H, W) -> float32 boxes (K, 4) x1 y1 x2 y2 enclosing their pixels (pixel
    ``i`` spans ``[i, i + 1)``, as pycocotools' ``toBbox``); an empty mask gives zeros."""
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    boxes = torch.zeros((masks.shape[0], 4), dtype=torch.float32, device=masks.device)
    for axis, hits in ((0, cols), (1, rows)):
        if hits.shape[1] == 0:
            continue
        index = torch.arange(hits.shape[1], device=masks.device)
        first = torch.where(hits, index, hits.shape[1]).min(dim=1).values
        last = torch.where(hits, index, -1).max(dim=1).values
        found = hits.any(dim=1)
        boxes[:, axis] = torch.where(found, first, 0).float()
        boxes[:, axis + 2] = torch.where(found, last + 1, 0).float()
    return boxes


def paddle_orig_size(input_size, scale_factor):
    """Paddle's original size of an image: ``int(input_size / scale_y + 0.5)`` for both sides, in
    float32 (ppdet uses the y scale for the width too). ``input_size`` (2,) (h, w),
    ``scale_factor`` (2,) (y, x) -> (h, w) ints."""
    size = torch.as_tensor(input_size).to(torch.float32)
    scale = torch.as_tensor(scale_factor).to(torch.float32)[0]
    return tuple(int(v) for v in (size / scale + 0.5).tolist())


def _full_size_masks(seg_preds, input_size, target_size, orig_size, mask_threshold):
    """Soft masks (k, h, w) at stride 4 -> bool (k, H, W) at ``orig_size``: upsampled x4
    (bilinear), cropped to ``input_size``, resized to Paddle's ``target_size``, thresholded, then
    cropped or zero-padded to ``orig_size`` (they differ when the x and y scales do)."""
    height, width = orig_size
    out = torch.zeros((seg_preds.shape[0], height, width), dtype=torch.bool,
                      device=seg_preds.device)
    up_size = (seg_preds.shape[-2] * 4, seg_preds.shape[-1] * 4)
    rows, cols = min(height, target_size[0]), min(width, target_size[1])
    for start in range(0, seg_preds.shape[0], _MASK_CHUNK):
        chunk = seg_preds[start:start + _MASK_CHUNK, None]
        chunk = F.interpolate(chunk, size=up_size, mode="bilinear", align_corners=False)
        chunk = chunk[..., :input_size[0], :input_size[1]]
        chunk = F.interpolate(chunk, size=target_size, mode="bilinear", align_corners=False)
        out[start:start + _MASK_CHUNK, :rows, :cols] = chunk[:, 0, :rows, :cols] > mask_threshold
    return out


def solov2_image_detections(cate_scores, kernels, mask_feats, cell_strides, input_size,
                            scale_factor, orig_size, score_threshold=0.1, mask_threshold=0.5,
                            mask_nms=None):
    """One image's ``Detections`` (masks bool (K, H, W) at ``orig_size``, boxes from the masks).

    ``cate_scores`` (A, C) point-NMS'ed sigmoid scores and ``kernels`` (A, E) of the A grid
    cells, ``mask_feats`` (E, h, w) at stride 4 of the padded input, ``cell_strides`` (A,) the
    stride of each cell's level, ``input_size`` (h, w) before padding, ``scale_factor`` (y, x),
    ``orig_size`` (H, W). As Paddle: candidates scoring above ``score_threshold``; their masks
    ``sigmoid(kernel . mask_feats) > mask_threshold`` must cover more pixels than their stride;
    scores times the maskness (mean soft mask inside the mask); Matrix NMS (``mask_nms``
    kwargs, see ``mask_matrix_nms``); masks to the original size (``_full_size_masks``).
    Only real detections are returned: Paddle adds one row before its final top-k (a zero-score
    "fake" candidate appended against empty outputs, or its last pre-NMS candidate again), and
    its COCO JSON writer drops the last row, which is a real detection when the top-k is full.
    """
    nms = {**MATRIX_NMS_DEFAULTS, **(mask_nms or {})}
    candidates = torch.nonzero((cate_scores > score_threshold) & (cate_scores != 0))
    cells, labels = candidates[:, 0], candidates[:, 1]
    scores = cate_scores[cells, labels]
    seg_logits = kernels[cells] @ mask_feats.flatten(1)
    seg_preds = torch.sigmoid(seg_logits.view(-1, *mask_feats.shape[1:]))
    seg_masks = seg_preds > mask_threshold
    sum_masks = seg_masks.sum(dim=(1, 2)).to(seg_preds.dtype)
    keep = sum_masks > cell_strides[cells].to(sum_masks.dtype)
    seg_preds, seg_masks, sum_masks = seg_preds[keep], seg_masks[keep], sum_masks[keep]
    labels, scores = labels[keep], scores[keep]
    scores = scores * (seg_preds * seg_masks).sum(dim=(1, 2)) / sum_masks
    order, scores = mask_matrix_nms(seg_masks, labels, scores, sum_masks, **nms)
    input_size = tuple(int(v) for v in input_size)
    target_size = paddle_orig_size(input_size, scale_factor)
    masks = _full_size_masks(seg_preds[order], input_size, target_size,
                             tuple(int(v) for v in orig_size), mask_threshold)
    return Detections(masks_to_boxes(masks), scores, labels[order], masks)


def solov2_postprocess(cate_scores, kernels, mask_feats, cell_strides, scale_factors, input_sizes,
                       orig_sizes, **settings):
    """Batched outputs ``cate_scores`` (N, A, C), ``kernels`` (N, A, E), ``mask_feats`` (N, E,
    h, w) and per-image ``scale_factors`` (N, 2), ``input_sizes`` (N, 2), ``orig_sizes`` (N, 2)
    -> list of N ``Detections`` (``solov2_image_detections``; ``settings`` are its thresholds)."""
    return [solov2_image_detections(c, k, m, cell_strides, size, scale, orig, **settings)
            for c, k, m, size, scale, orig in zip(cate_scores, kernels, mask_feats, input_sizes,
                                                  scale_factors, orig_sizes)]

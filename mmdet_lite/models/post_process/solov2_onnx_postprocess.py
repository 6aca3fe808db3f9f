"""SOLOv2's post-processing for the ONNX graph: ``solov2_image_detections``' steps on a whole
batch, as traceable tensor code (no Python branches on data, dynamic candidate counts)."""
import torch
import torch.nn.functional as F

from mmdet_lite.models.post_process.matrix_nms import MATRIX_NMS_DEFAULTS, matrix_nms_decay

__all__ = ["solov2_onnx_postprocess"]


def _first(values, count):
    """The first ``count`` (a 0-d int64 tensor, traced as a graph value) entries of the last
    dim of ``values`` (..., n)."""
    return values.index_select(-1, torch.arange(count, device=values.device))


def _sorted_first(key, count, *values):
    """Sort ``key`` (N, n) descending per row and keep the first ``count``: ``(key, index,
    *values)`` (N, count), ``values`` (N, n) gathered in the same order."""
    key, index = key.sort(dim=1, descending=True)
    index = _first(index, count)
    return (_first(key, count), index, *(v.gather(1, index) for v in values))


def solov2_onnx_postprocess(cate_scores, kernels, mask_feats, cell_strides, score_threshold=0.1,
                            mask_threshold=0.5, mask_nms=None):
    """Batched SOLOv2 detections in input pixels: ``(masks (M, H, W) bool, scores (M,),
    labels (M,) int64, batch_indices (M,) int64)``, grouped by image, best first.

    ``cate_scores`` (N, A, C) point-NMS'ed sigmoid scores and ``kernels`` (N, A, E) of the A
    grid cells, ``mask_feats`` (N, E, h, w) at stride 4 of the (padded) input, ``cell_strides``
    (A,) the stride of each cell's level. The steps of ``solov2_image_detections`` per image:
    candidates scoring above ``score_threshold``, masks ``sigmoid(kernel . mask_feats) >
    mask_threshold`` covering more pixels than their stride, maskness rescoring, the best
    ``pre_nms_top_n``, Matrix NMS (``matrix_nms_decay``), decayed scores at least
    ``update_threshold``, the best ``post_nms_top_n`` (``mask_nms`` kwargs, see
    ``mask_matrix_nms``); their soft masks upsampled x4 (bilinear) to H = 4h, W = 4w and
    thresholded. The images are padded to the largest candidate count of the batch (padding
    candidates are invalid and never returned); at most ``N * post_nms_top_n`` detections.
    """
    nms = {**MATRIX_NMS_DEFAULTS, **(mask_nms or {})}
    num_classes, channels = cate_scores.shape[2], kernels.shape[2]
    height, width = mask_feats.shape[-2:]
    flat = cate_scores.flatten(1)  # (N, A * C), cell-major as Paddle's nonzero
    is_candidate = (flat > score_threshold) & (flat != 0)
    count = is_candidate.sum(1).max().clamp(min=1)
    scores, order, valid = _sorted_first(torch.where(is_candidate, flat, -1.0), count,
                                         is_candidate)
    cells = torch.div(order, num_classes, rounding_mode="floor")
    labels = order - cells * num_classes
    cell_kernels = kernels.gather(1, cells.unsqueeze(2).expand(-1, -1, channels))
    seg_preds = torch.sigmoid(cell_kernels @ mask_feats.flatten(2))  # (N, n, h * w)
    inside = torch.where(seg_preds > mask_threshold, seg_preds, 0.0)
    sum_masks = (inside > 0).sum(2).to(seg_preds.dtype)
    valid = valid & (sum_masks > cell_strides[cells].to(sum_masks.dtype))
    scores = scores * inside.sum(2) / sum_masks.clamp(min=1)
    del inside
    # Invalid candidates sort last: they only ever come after the valid ones in Matrix NMS.
    pre_count = count.clamp(max=nms["pre_nms_top_n"])
    scores, pre, valid, labels, sum_masks = _sorted_first(
        torch.where(valid, scores, -1.0), pre_count, valid, labels, sum_masks)
    pre_preds = seg_preds.gather(1, pre.unsqueeze(2).expand(-1, -1, seg_preds.shape[2]))
    pre_masks = (pre_preds > mask_threshold).to(seg_preds.dtype)
    decayed = scores * matrix_nms_decay(pre_masks, labels, sum_masks, nms["kernel"],
                                        nms["sigma"])
    valid = valid & (decayed >= nms["update_threshold"])
    post_count = pre_count.clamp(max=nms["post_nms_top_n"])
    scores, post, valid, labels, pre = _sorted_first(torch.where(valid, decayed, -1.0),
                                                     post_count, valid, labels, pre)
    rows = torch.nonzero(valid)  # (M, 2) [image, rank], row-major: by image, best first
    image, rank = rows[:, 0], rows[:, 1]
    candidate = pre[image, rank]  # index into the first-stage candidates of its image
    soft = seg_preds[image, candidate].reshape(-1, 1, height, width)
    soft = F.interpolate(soft, size=(height * 4, width * 4), mode="bilinear",
                         align_corners=False)
    return soft[:, 0] > mask_threshold, scores[image, rank], labels[image, rank], image

"""Reference outputs of ppdet's PicoDet assigners and losses (run under the Paddle interpreter).

Usage: python paddle_assigners_losses.py OUT.npz
Builds seeded, realistic inputs (anchors of a 2-level grid, padded GTs, one image without GT, random
predictions), runs ppdet 2.6.0's ATSSAssigner, TaskAlignedAssigner, VarifocalLoss, GIoULoss and
DistributionFocalLoss on them and saves inputs and outputs to OUT.npz. Never imports torch.
"""
import sys

import numpy as np
import paddle
import ppdet.modeling.assigners.atss_assigner as atss_module
import ppdet.modeling.assigners.task_aligned_assigner as tal_module
from ppdet.modeling.assigners import ATSSAssigner, TaskAlignedAssigner
from ppdet.modeling.assigners.utils import generate_anchors_for_grid_cell
from ppdet.modeling.losses import DistributionFocalLoss, GIoULoss
from ppdet.modeling.losses.varifocal_loss import VarifocalLoss

NUM_CLASSES, STRIDES, IMAGE_HW = 5, (8, 16), (128, 160)
CALLS = {"atss": 0, "tal": 0}


def count_calls(module, key):
    """Wrap the module's compute_max_iou_anchor to record that the multiple-GT branch ran."""
    original = module.compute_max_iou_anchor

    def wrapped(ious):
        CALLS[key] += 1
        return original(ious)

    module.compute_max_iou_anchor = wrapped


def make_gts(rng):
    """3 images, 6 GT slots: 6 real (a nested pair, a shifted pair, a tiny box), 3 real, none."""
    h, w = IMAGE_HW
    boxes = np.zeros((3, 6, 4), np.float32)
    labels = np.zeros((3, 6, 1), np.int64)
    mask = np.zeros((3, 6, 1), np.float32)
    for i, count in enumerate((6, 3, 0)):
        for j in range(count):
            bw, bh = rng.uniform(10, 90), rng.uniform(10, 80)
            x1, y1 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            boxes[i, j] = (x1, y1, x1 + bw, y1 + bh)
        labels[i, :count, 0] = rng.randint(0, NUM_CLASSES, count)
        mask[i, :count] = 1.0
    outer = boxes[0, 0]
    boxes[0, 1] = outer + np.array([3.3, 2.7, -4.1, -3.9], np.float32)  # nested in GT 0
    boxes[0, 2] = (37.3, 41.9, 43.6, 47.2)  # smaller than a stride-8 cell
    boxes[0, 3] = boxes[0, 4] + np.array([6.2, 4.7, 5.1, 6.3], np.float32)  # overlaps GT 4
    return labels, boxes, mask


def main(out_path):
    paddle.set_device("cpu")
    paddle.seed(0)
    rng = np.random.RandomState(2024)
    count_calls(atss_module, "atss")
    count_calls(tal_module, "tal")

    feats = [paddle.zeros([1, 1, IMAGE_HW[0] // s, IMAGE_HW[1] // s]) for s in STRIDES]
    anchors, points, num_anchors_list, strides = generate_anchors_for_grid_cell(
        feats, STRIDES, 5.0, 0.5)
    num_anchors = anchors.shape[0]
    gt_labels, gt_bboxes, pad_gt_mask = make_gts(rng)
    batch = gt_bboxes.shape[0]
    ltrb = rng.uniform(2.0, 45.0, (batch, num_anchors, 4)).astype(np.float32)
    centers = points.numpy()[None]
    pred_bboxes = np.concatenate([centers - ltrb[..., :2], centers + ltrb[..., 2:]], -1)
    logits = rng.normal(-1.0, 1.5, (2, batch, num_anchors, NUM_CLASSES)).astype(np.float32)
    sig = 1.0 / (1.0 + np.exp(-logits))
    pred_scores = np.sqrt(sig[0] * sig[1] + 1e-9).astype(np.float32)
    gt_scores = rng.uniform(0.3, 1.0, (batch, 6, 1)).astype(np.float32)

    t = paddle.to_tensor
    gt = (t(gt_labels), t(gt_bboxes), t(pad_gt_mask))
    out = dict(anchors=anchors.numpy(), anchor_points=points.numpy(), strides=strides.numpy(),
               num_anchors_list=np.array(num_anchors_list), gt_labels=gt_labels,
               gt_bboxes=gt_bboxes, pad_gt_mask=pad_gt_mask, gt_scores=gt_scores,
               pred_bboxes=pred_bboxes, pred_scores=pred_scores, num_classes=NUM_CLASSES)

    runs = {"atss_pred": (ATSSAssigner(9, NUM_CLASSES), dict(pred_bboxes=t(pred_bboxes))),
            "atss_gts": (ATSSAssigner(9, NUM_CLASSES), dict(gt_scores=t(gt_scores))),
            "atss_force": (ATSSAssigner(9, NUM_CLASSES, force_gt_matching=True), {})}
    for name, (assigner, kwargs) in runs.items():
        res = assigner(anchors, num_anchors_list, *gt, bg_index=NUM_CLASSES, **kwargs)
        for key, value in zip(("labels", "bboxes", "scores"), res[:3]):
            out[f"{name}_{key}"] = value.numpy()
    tal = TaskAlignedAssigner(topk=13, alpha=1.0, beta=6.0)
    res = tal(t(pred_scores), t(pred_bboxes), points, num_anchors_list, *gt, bg_index=NUM_CLASSES)
    for key, value in zip(("labels", "bboxes", "scores"), res[:3]):
        out[f"tal_{key}"] = value.numpy()
    out["atss_multi_calls"], out["tal_multi_calls"] = CALLS["atss"], CALLS["tal"]

    empty = (t(np.zeros((2, 0, 1), np.int64)), t(np.zeros((2, 0, 4), np.float32)),
             t(np.zeros((2, 0, 1), np.float32)))
    res = ATSSAssigner(9, NUM_CLASSES)(anchors, num_anchors_list, *empty, bg_index=NUM_CLASSES)
    out["empty_atss_labels"], out["empty_atss_scores"] = res[0].numpy(), res[2].numpy()
    res = tal(t(pred_scores[:2]), t(pred_bboxes[:2]), points, num_anchors_list, *empty,
              bg_index=NUM_CLASSES)
    out["empty_tal_labels"], out["empty_tal_scores"] = res[0].numpy(), res[2].numpy()

    # Varifocal loss as PicoHeadV2 calls it (probabilities, avg_factor = assigned-score sum).
    vfl_pred = pred_scores.reshape(-1, NUM_CLASSES).copy()
    vfl_pred[:3, 0] = 1.0
    vfl_target = out["tal_scores"].reshape(-1, NUM_CLASSES)
    out["vfl_pred"], out["vfl_target"] = vfl_pred, vfl_target
    vfl = VarifocalLoss(use_sigmoid=False, iou_weighted=True, loss_weight=1.0)
    out["vfl_loss"] = vfl(t(vfl_pred), t(vfl_target), avg_factor=t(vfl_target).sum()).numpy()
    vfl_logits = rng.normal(0.0, 2.0, vfl_target.shape).astype(np.float32)
    out["vfl_logits"] = vfl_logits
    vfl = VarifocalLoss(use_sigmoid=True, iou_weighted=False, reduction="none", loss_weight=0.7)
    out["vfl_sigmoid_none"] = vfl(t(vfl_logits), t(vfl_target)).numpy()

    # GIoU loss on aligned pairs (grid units), PicoHeadV2's weighted sum, and "mean".
    num_pos = 64
    xy = rng.uniform(0, 15, (2, num_pos, 2)).astype(np.float32)
    wh = rng.uniform(0.3, 8, (2, num_pos, 2)).astype(np.float32)
    giou_pred = np.concatenate([xy[0], xy[0] + wh[0]], -1)
    giou_target = np.concatenate([xy[1], xy[1] + wh[1]], -1)
    giou_target[:8] = giou_pred[:8]
    giou_target[8:16] = giou_pred[8:16] + np.array([0.2, -0.1, 0.3, 0.25], np.float32)
    giou_weight = rng.uniform(0, 1, (num_pos, 1)).astype(np.float32)
    out.update(giou_pred=giou_pred, giou_target=giou_target, giou_weight=giou_weight)
    loss_none = GIoULoss(loss_weight=2.5)(t(giou_pred), t(giou_target))
    out["giou_none"] = loss_none.numpy()
    out["giou_weighted_sum"] = paddle.sum(loss_none * t(giou_weight)).numpy()
    giou_mean = GIoULoss(loss_weight=2.5, reduction="mean")
    out["giou_mean"] = giou_mean(t(giou_pred), t(giou_target), iou_weight=t(giou_weight)).numpy()

    # DFL over reg_max + 1 = 8 bins, as PicoHeadV2 calls it.
    reg_max = 7
    dfl_pred = rng.normal(0, 2, (num_pos * 4, reg_max + 1)).astype(np.float32)
    dfl_target = rng.uniform(0, reg_max - 0.1, num_pos * 4).astype(np.float32)
    dfl_target[:4] = (0.0, 3.0, reg_max - 0.1, 5.5)
    dfl_weight = np.repeat(giou_weight, 4, axis=1).reshape(-1)
    out.update(dfl_pred=dfl_pred, dfl_target=dfl_target, dfl_weight=dfl_weight)
    dfl = DistributionFocalLoss(loss_weight=0.5)
    out["dfl_loss"] = dfl(t(dfl_pred), t(dfl_target), weight=t(dfl_weight), avg_factor=4.0).numpy()
    dfl_none = DistributionFocalLoss(reduction="none", loss_weight=1.0)
    out["dfl_none"] = dfl_none(t(dfl_pred), t(dfl_target)).numpy()

    np.savez(out_path, **{k: np.asarray(v) for k, v in out.items()})
    print(f"saved {len(out)} arrays; multiple-GT branch: {CALLS}")


if __name__ == "__main__":
    main(sys.argv[1])

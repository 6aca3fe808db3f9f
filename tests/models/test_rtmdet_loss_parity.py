"""RTMDet's assigner, quality focal / GIoU losses and gradients against mmdet 3.3.0 on one batch."""
import numpy as np
import pytest
import torch

from mmdet_lite.models.assigners.dynamic_soft_label import DynamicSoftLabelAssigner
from mmdet_lite.models.losses.quality_focal import QualityFocalLoss
from mmdet_lite.models.losses.rtmdet_loss import RTMDetLoss
from mmdet_lite.utils.boxes import anchor_points, distance2bbox

from conftest import REPO_ROOT, run_mmdet

SCRIPT = REPO_ROOT / "tests/reference/mmdet_rtmdet_loss.py"
NUM_CLASSES, STRIDES, IMAGE_HW = 5, (8, 16, 32), (128, 160)


def make_batch(seed=0):
    """Four images: crowded overlapping GTs, a GT too small to hold a prior, none, many."""
    rng = np.random.RandomState(seed)
    boxes = [
        [[10, 12, 70, 90], [30, 30, 100, 110], [40, 20, 150, 60], [5, 5, 40, 40],
         [60, 50, 120, 125], [0, 64, 160, 128]],
        [[1, 1, 3, 3], [20, 30, 60, 80], [90, 10, 140, 120]],
        [],
        [[x, y, x + w, y + h] for x, y, w, h in zip(rng.uniform(0, 100, 10), rng.uniform(0, 70, 10),
                                                    rng.uniform(8, 60, 10),
                                                    rng.uniform(8, 60, 10))],
    ]
    num = max(len(b) for b in boxes)
    gt_bboxes = np.zeros((len(boxes), num, 4), np.float32)
    gt_labels = np.zeros((len(boxes), num, 1), np.int64)
    pad_gt_mask = np.zeros((len(boxes), num, 1), np.float32)
    for i, b in enumerate(boxes):
        gt_bboxes[i, :len(b)] = np.reshape(b, (-1, 4))
        gt_labels[i, :len(b), 0] = rng.randint(NUM_CLASSES, size=len(b))
        pad_gt_mask[i, :len(b)] = 1
    arrays = dict(gt_bboxes=gt_bboxes, gt_labels=gt_labels, pad_gt_mask=pad_gt_mask,
                  strides=np.array(STRIDES), image_hw=np.array(IMAGE_HW))
    for level, stride in enumerate(STRIDES):
        h, w = IMAGE_HW[0] // stride, IMAGE_HW[1] // stride
        arrays[f"cls_{level}"] = (rng.randn(len(boxes), NUM_CLASSES, h, w) * 2 - 2).astype(
            np.float32)
        arrays[f"reg_{level}"] = (rng.uniform(0.3, 4.0, (len(boxes), 4, h, w)) * stride).astype(
            np.float32)
    return arrays


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rtmdet_loss")
    arrays = make_batch()
    np.savez(folder / "in.npz", **arrays)
    run_mmdet(SCRIPT, folder / "in.npz", folder / "out.npz")
    return arrays, dict(np.load(folder / "out.npz"))


def flat_inputs(arrays):
    num = arrays["gt_bboxes"].shape[0]
    cls = torch.cat([torch.from_numpy(arrays[f"cls_{i}"]).permute(0, 2, 3, 1).reshape(
        num, -1, NUM_CLASSES) for i in range(len(STRIDES))], 1)
    reg = torch.cat([torch.from_numpy(arrays[f"reg_{i}"]).permute(0, 2, 3, 1).reshape(num, -1, 4)
                     for i in range(len(STRIDES))], 1)
    sizes = [arrays[f"cls_{i}"].shape[-2:] for i in range(len(STRIDES))]
    points, strides = anchor_points(sizes, STRIDES, cell_offset=0.0)
    points = points * strides
    return cls, distance2bbox(points, reg), points, strides


def targets_of(arrays):
    return {k: torch.from_numpy(arrays[k]) for k in ("gt_bboxes", "gt_labels", "pad_gt_mask")}


def test_assignment_matches_mmdet(ref):
    arrays, out = ref
    cls, boxes, points, strides = flat_inputs(arrays)
    np.testing.assert_array_equal(torch.cat([points, strides, strides], 1).numpy(), out["priors"])
    t = targets_of(arrays)
    got = DynamicSoftLabelAssigner(topk=13, iou_weight=3.0, soft_center_radius=3.0)(
        cls, boxes, points, strides, t["gt_labels"], t["gt_bboxes"], t["pad_gt_mask"])
    num_pos = 0
    for i in range(cls.shape[0]):
        gt_inds = out[f"gt_inds_{i}"]
        np.testing.assert_array_equal(got.gt_index[i].numpy() + 1, gt_inds)
        positive = gt_inds > 0
        labels = np.where(positive, out[f"labels_{i}"], NUM_CLASSES)
        np.testing.assert_array_equal(got.labels[i].numpy(), labels)
        np.testing.assert_allclose(got.ious[i].numpy()[positive],
                                   out[f"max_overlaps_{i}"][positive], rtol=0, atol=1e-6)
        assert (got.ious[i].numpy()[~positive] == 0).all()
        num_pos += positive.sum()
    assert (out["gt_inds_2"] == 0).all() and num_pos > 40
    # several GTs per prior were resolved: some prior lies inside two GTs that both are assigned
    assert len(np.unique(out["gt_inds_0"][out["gt_inds_0"] > 0])) == 6


def test_losses_and_gradients_match_mmdet(ref):
    arrays, out = ref
    cls_scores = [torch.tensor(arrays[f"cls_{i}"], requires_grad=True) for i in range(3)]
    bbox_preds = [torch.tensor(arrays[f"reg_{i}"], requires_grad=True) for i in range(3)]
    criterion = RTMDetLoss(NUM_CLASSES, assigner=dict(topk=13), loss_cls=dict(beta=2.0),
                           loss_bbox=dict(loss_weight=2.0))
    losses = criterion(cls_scores, bbox_preds, targets_of(arrays), STRIDES)
    np.testing.assert_allclose(losses["loss_cls"].item(), out["loss_cls"], rtol=1e-5)
    np.testing.assert_allclose(losses["loss_bbox"].item(), out["loss_bbox"], rtol=1e-5)
    torch.testing.assert_close(losses["total_loss"], losses["loss_cls"] + losses["loss_bbox"])
    losses["total_loss"].backward()
    for i in range(3):
        for got, key in ((cls_scores[i].grad, f"grad_cls_{i}"),
                         (bbox_preds[i].grad, f"grad_reg_{i}")):
            scale = np.abs(out[key]).max()
            assert scale > 0
            np.testing.assert_allclose(got.numpy(), out[key], rtol=1e-5, atol=1e-5 * scale)


def test_batch_without_gts_gives_finite_losses():
    arrays = make_batch()
    for key in ("gt_bboxes", "gt_labels", "pad_gt_mask"):
        arrays[key] = arrays[key][:, :0]
    cls_scores = [torch.tensor(arrays[f"cls_{i}"], requires_grad=True) for i in range(3)]
    bbox_preds = [torch.tensor(arrays[f"reg_{i}"], requires_grad=True) for i in range(3)]
    losses = RTMDetLoss(NUM_CLASSES)(cls_scores, bbox_preds, targets_of(arrays), STRIDES)
    assert losses["loss_bbox"].item() == 0 and losses["loss_cls"].item() > 0
    losses["total_loss"].backward()
    assert all(torch.isfinite(c.grad).all() for c in cls_scores)


def test_quality_focal_loss_positive_and_negative_terms():
    pred = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    labels, scores = torch.tensor([1, 2]), torch.tensor([0.7, 0.0])
    loss = QualityFocalLoss(beta=2.0, reduction="none")(pred, labels, scores)
    p = pred.sigmoid()
    neg = -torch.log(1 - p) * p ** 2
    pos = -(0.7 * torch.log(p[0, 1]) + 0.3 * torch.log(1 - p[0, 1])) * (0.7 - p[0, 1]).abs() ** 2
    torch.testing.assert_close(loss, torch.stack([neg[0, 0] + pos, neg[1].sum()]))


def _half(arrays, rank):
    keep = slice(2 * rank, 2 * rank + 2)
    cls = [torch.tensor(arrays[f"cls_{i}"][keep]) for i in range(3)]
    reg = [torch.tensor(arrays[f"reg_{i}"][keep]) for i in range(3)]
    targets = {k: v[keep] for k, v in targets_of(arrays).items()}
    return cls, reg, targets


def _dist_worker(rank, world_size, folder):
    torch.distributed.init_process_group("gloo", init_method=f"file://{folder}/rendezvous",
                                         rank=rank, world_size=world_size)
    losses = RTMDetLoss(NUM_CLASSES)(*_half(make_batch(), rank), STRIDES)
    torch.save({k: v.detach() for k, v in losses.items()}, f"{folder}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_average_factor_is_the_mean_over_processes(tmp_path):
    """Two processes with two images each: both terms are divided by the mean of their IoU sums,
    as mmdet's reduce_mean makes it."""
    torch.multiprocessing.spawn(_dist_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    arrays, criterion = make_batch(), RTMDetLoss(NUM_CLASSES)
    sums, factors = [], []
    for rank in range(2):
        losses = criterion(*_half(arrays, rank), STRIDES)
        cls, reg, targets = _half(arrays, rank)
        flat_cls, boxes, points, strides = flat_inputs(
            {**arrays, **{f"cls_{i}": cls[i].numpy() for i in range(3)},
             **{f"reg_{i}": reg[i].numpy() for i in range(3)},
             "gt_bboxes": targets["gt_bboxes"].numpy()})
        ious = criterion.assigner(flat_cls, boxes, points, strides, targets["gt_labels"],
                        targets["gt_bboxes"], targets["pad_gt_mask"]).ious.sum()
        assert ious > 1  # mmdet clamps the mean at 1: unclamped sums keep the test exact
        factors.append(ious)
        sums.append({k: losses[k] * factors[-1] for k in ("loss_cls", "loss_bbox")})
    mean = (factors[0] + factors[1]) / 2
    assert not torch.isclose(factors[0], factors[1])
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        for key in ("loss_cls", "loss_bbox"):
            torch.testing.assert_close(got[key], sums[rank][key] / mean, rtol=1e-5, atol=0)

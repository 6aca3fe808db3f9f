"""PicoDet training pipeline: ppdet parity of the transforms, geometry, determinism, GT handling."""
import json
import textwrap

import cv2
import numpy as np
import pytest
import torch

from mmdet_lite.data.coco import COCODataset
from mmdet_lite.data.geometric import BatchRandomResize, RandomCrop, RandomFlip
from mmdet_lite.data.photometric import RandomDistort, apply_color_transform
from mmdet_lite.data.synthetic import make_shapes_dataset
from mmdet_lite.data.targets import pad_gt
from mmdet_lite.data.train_loader import TrainDataset, build_train_loader
from mmdet_lite.utils.errors import UserError

from conftest import run_paddle

NUM_SAMPLES = 64
REF_SIZES = [64, 96, 128, 160]

# Runs ppdet 2.6.0's own operators, seeding numpy's global RNG per sample / per batch.
PADDLE_SCRIPT = textwrap.dedent("""
    import copy, sys
    import numpy as np
    from ppdet.data.transform.operators import RandomCrop, RandomFlip, RandomDistort
    from ppdet.data.transform.batch_operators import BatchRandomResize, PadGT

    inp, out_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sizes = [int(s) for s in sys.argv[4].split(",")]
    data = np.load(inp)
    ops = [RandomCrop(), RandomFlip(prob=0.5), RandomDistort()]
    out, samples = {}, []
    for s in range(n):
        np.random.seed(s)
        sample = dict(image=data["image"].copy(), gt_bbox=data["boxes"].copy(),
                      gt_class=data["labels"][:, None].astype(np.int32))
        for op in ops:
            sample = op(sample)
        samples.append(sample)
        out[f"image{s}"] = np.asarray(sample["image"], dtype=np.float32)
        out[f"boxes{s}"] = sample["gt_bbox"]
        out[f"labels{s}"] = sample["gt_class"][:, 0]
    resize = BatchRandomResize(target_size=sizes, random_size=True, random_interp=True,
                               keep_ratio=False)
    for j in range(n // 2):
        batch = copy.deepcopy(samples[2 * j:2 * j + 2])
        batch[1]["gt_bbox"] = batch[1]["gt_bbox"][:1]
        batch[1]["gt_class"] = batch[1]["gt_class"][:1]
        np.random.seed(10000 + j)
        batch = PadGT()(resize(batch))
        for k, sample in enumerate(batch):
            out[f"b{j}_{k}_image"] = np.asarray(sample["image"], dtype=np.float32)
            out[f"b{j}_{k}_boxes"] = sample["gt_bbox"]
            out[f"b{j}_{k}_labels"] = sample["gt_class"]
            out[f"b{j}_{k}_mask"] = sample["pad_gt_mask"]
    np.savez(out_path, **out)
""")


def _test_image():
    """A 96x128 RGB image: smooth colour gradients, three coloured rectangles, noise."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:96, 0:128].astype(np.float32)
    image = np.stack([60 + xx, 40 + yy * 1.5, 200 - xx * 0.8], axis=2)
    boxes = np.array([[10, 8, 50, 40], [60, 30, 120, 90], [30, 55, 45, 70]], dtype=np.float32)
    for (x1, y1, x2, y2), colour in zip(boxes.astype(int), [(250, 30, 30), (20, 220, 60),
                                                             (240, 240, 240)]):
        image[y1:y2, x1:x2] = colour
    image += rng.normal(0, 6, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), boxes, np.array([2, 0, 4])


@pytest.fixture(scope="module")
def paddle_reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("paddle_train")
    image, boxes, labels = _test_image()
    np.savez(root / "input.npz", image=image, boxes=boxes, labels=labels)
    (root / "ref.py").write_text(PADDLE_SCRIPT)
    run_paddle(root / "ref.py", root / "input.npz", root / "out.npz", NUM_SAMPLES,
               ",".join(map(str, REF_SIZES)))
    return (image, boxes, labels), dict(np.load(root / "out.npz"))


def picodet_transforms(defer=False):
    """PicoDet's TrainReader sample transforms (picodet_416_reader.yml)."""
    return [RandomCrop(), RandomFlip(prob=0.5), RandomDistort(defer=defer)]


def _our_sample(image, boxes, labels, seed, defer):
    sample = dict(image=image.copy(), boxes=boxes.copy(), labels=labels.astype(np.int64),
                  image_id=1)
    rng = np.random.RandomState(seed)
    for op in picodet_transforms(defer):
        sample = op(sample, rng)
    return sample


def _color(image, sample):
    """Apply a deferred colour transform to an HWC image in float64 (reference math)."""
    ct = sample["color_transform"].astype(np.float64)
    return image.astype(np.float64) @ ct[:, :3].T + ct[:, 3]


def test_sample_transforms_match_ppdet(paddle_reference):
    (image, boxes, labels), ref = paddle_reference
    cropped = flipped = 0
    for s in range(NUM_SAMPLES):
        now = _our_sample(image, boxes, labels, s, defer=False)
        deferred = _our_sample(image, boxes, labels, s, defer=True)
        ref_image = ref[f"image{s}"]
        assert now["image"].dtype == np.uint8 and now["image"].shape == ref_image.shape
        np.testing.assert_array_equal(now["boxes"], ref[f"boxes{s}"])
        np.testing.assert_array_equal(now["labels"], ref[f"labels{s}"])
        # uint8 path: ppdet's float result, rounded and saturated
        diff = np.abs(now["image"].astype(np.float32) - np.clip(ref_image, 0, 255))
        assert diff.max() <= 1.0, s
        # deferred path: exact up to float precision (no clipping, like ppdet)
        np.testing.assert_allclose(_color(deferred["image"], deferred), ref_image, atol=2e-3)
        cropped += ref_image.shape[:2] != image.shape[:2]
        same_geom = deferred["image"].shape == image.shape
        flipped += same_geom and not np.array_equal(deferred["image"], image)
    assert 10 < cropped < NUM_SAMPLES and flipped > 3


def test_batch_transforms_match_ppdet(paddle_reference):
    (image, boxes, labels), ref = paddle_reference
    resize = BatchRandomResize(REF_SIZES, random_size=True, random_interp=True)
    samples = [_our_sample(image, boxes, labels, s, defer=True) for s in range(NUM_SAMPLES)]
    seen_sizes = set()
    for j in range(NUM_SAMPLES // 2):
        batch = [dict(s, boxes=s["boxes"].copy()) for s in samples[2 * j:2 * j + 2]]
        batch[1]["boxes"], batch[1]["labels"] = batch[1]["boxes"][:1], batch[1]["labels"][:1]
        size, interp = resize.draw(np.random.RandomState(10000 + j))
        batch = resize(batch, size, interp)
        padded = pad_gt(batch)
        gt_bboxes, gt_labels, mask = (padded[k] for k in ("gt_bboxes", "gt_labels", "pad_gt_mask"))
        for k, sample in enumerate(batch):
            ref_image = ref[f"b{j}_{k}_image"]
            assert sample["image"].shape == ref_image.shape and sample["image"].dtype == np.uint8
            seen_sizes.add(ref_image.shape[0])
            np.testing.assert_array_equal(gt_bboxes[k], ref[f"b{j}_{k}_boxes"])
            np.testing.assert_array_equal(gt_labels[k], ref[f"b{j}_{k}_labels"])
            np.testing.assert_array_equal(mask[k], ref[f"b{j}_{k}_mask"])
            # ppdet resizes the distorted float image; resizing is linear, so colour(resize(x))
            # in float equals it, and our uint8 resize differs from resize(x) only by rounding
            # and by saturating interpolation overshoot (cubic, lanczos, area) to 0..255.
            pre = samples[2 * j + k]["image"]
            as_float = resize.resize(dict(image=pre.astype(np.float32), boxes=boxes), size,
                                     interp)["image"]
            assert np.abs(sample["image"] - np.clip(as_float, 0, 255)).max() <= 1.5, interp
            ct = torch.from_numpy(sample["color_transform"])[None].double()
            if np.array_equal(sample["color_transform"], np.eye(3, 4)):
                np.testing.assert_array_equal(sample["image"], ref_image)  # ppdet stayed uint8
            else:
                ours = apply_color_transform(
                    torch.from_numpy(as_float).permute(2, 0, 1)[None].double(), ct)
                np.testing.assert_allclose(ours[0].permute(1, 2, 0).numpy(), ref_image,
                                           atol=2e-3)
        assert mask[1].sum() == 1 and mask[0].sum() >= 1
    assert seen_sizes == set(REF_SIZES)


def _write_coco(root, entries):
    """entries: list of (image BGR uint8, [(x1, y1, x2, y2, category_id, iscrowd), ...])."""
    images, anns = [], []
    (root / "img").mkdir(parents=True, exist_ok=True)
    for i, (image, objects) in enumerate(entries, start=1):
        cv2.imwrite(str(root / "img" / f"{i}.png"), image)
        images.append(dict(id=i, file_name=f"{i}.png", height=image.shape[0],
                           width=image.shape[1]))
        for x1, y1, x2, y2, cat, crowd in objects:
            anns.append(dict(id=len(anns) + 1, image_id=i, category_id=cat, iscrowd=crowd,
                             bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1)))
    cats = [dict(id=3, name="a"), dict(id=9, name="b")]
    (root / "ann.json").write_text(json.dumps(dict(images=images, annotations=anns,
                                                   categories=cats)))
    return COCODataset(root, "ann.json", "img")


def _rect_image(h, w, box):
    image = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = 255
    return image, [(*box, 9, 0)]


def test_boxes_follow_the_white_rectangle(tmp_path):
    boxes = [(20, 10, 70, 60), (100, 40, 150, 110), (5, 70, 40, 115), (60, 30, 110, 90)]
    dataset = _write_coco(tmp_path, [_rect_image(120, 160, b) for b in boxes])
    sizes = (64, 96, 128)
    loader = build_train_loader(dataset, batch_size=2, num_workers=0, seed=5, target_sizes=sizes,
                                sample_transforms=picodet_transforms(defer=True))
    checked = 0
    for epoch in range(8):
        loader.set_epoch(epoch)
        for batch in loader:
            size = batch["images"].shape[-1]
            assert batch["images"].dtype == torch.uint8 and size in sizes
            assert batch["images"].shape[-2] == size
            np.testing.assert_array_equal(batch["pad_gt_mask"].numpy(), np.ones((2, 1, 1)))
            assert (batch["gt_labels"] == 1).all()
            for image, box in zip(batch["images"], batch["gt_bboxes"][:, 0]):
                assert (box >= 0).all() and (box <= size).all() and (box[2:] > box[:2]).all()
                ys, xs = np.nonzero(image.float().mean(0).numpy() > 127.5)
                found = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
                assert np.abs(found - box.numpy()).max() <= 1.5, (found, box)
                checked += 1
    assert checked == 8 * 4


def test_deterministic_and_worker_independent(tmp_path):
    make_shapes_dataset(tmp_path, num_train=12, num_val=1, seed=0, min_size=(64, 80),
                        max_size=(96, 120), empty_prob=0.0)
    dataset = COCODataset(tmp_path, "annotations/train.json", "train")

    def epoch_batches(num_workers, epoch, start_batch=0, **kw):
        loader = build_train_loader(dataset, batch_size=3, num_workers=num_workers, seed=11,
                                    target_sizes=(64, 96, 128),
                                    sample_transforms=picodet_transforms(), **kw)
        loader.set_epoch(epoch, start_batch)
        return list(loader)

    def same(a, b):
        return len(a) == len(b) and all(
            x["image_ids"] == y["image_ids"] and all(torch.equal(x[k], y[k]) for k in
                                                    ("images", "gt_bboxes", "gt_labels",
                                                     "pad_gt_mask")) for x, y in zip(a, b))

    first = epoch_batches(0, 0)
    assert len(first) == 4
    assert same(first, epoch_batches(2, 0))
    assert same(first, epoch_batches(0, 0))
    second = epoch_batches(0, 1)
    assert not same(first, second)
    assert same(second[2:], epoch_batches(0, 1, start_batch=2))
    assert sorted(i for b in first for i in b["image_ids"]) == sorted(dataset.image_ids)
    assert len({b["images"].shape[-1] for b in first + second}) > 1
    shards = [epoch_batches(0, 1, rank=r, world_size=2) for r in range(2)]
    ids = [i for shard in shards for b in shard for i in b["image_ids"]]
    assert sorted(ids) == sorted(dataset.image_ids) and len(shards[0]) == 2


def test_empty_and_crowd_ground_truth(tmp_path):
    h, w = 80, 100
    blank = np.zeros((h, w, 3), np.uint8)
    dataset = _write_coco(tmp_path, [
        (blank, []),                                              # no annotation
        (blank, [(5, 5, 40, 40, 3, 0), (50, 10, 90, 70, 9, 1)]),  # one box + one crowd region
        (blank, [(10, 10, 60, 60, 9, 1)]),                        # crowd only
    ])
    ppdet_like = TrainDataset(dataset, [])
    assert [ppdet_like[i]["image_id"] for i in range(len(ppdet_like))] == [2]
    sample = ppdet_like[0]
    np.testing.assert_array_equal(sample["boxes"], [[5, 5, 40, 40]])
    np.testing.assert_array_equal(sample["labels"], [0])
    assert sample["image"].shape == (h, w, 3) and sample["image"].dtype == np.uint8

    with_crowd = TrainDataset(dataset, [], drop_crowd=False)
    assert len(with_crowd) == 2 and len(with_crowd[0]["boxes"]) == 2

    loader = build_train_loader(dataset, batch_size=3, num_workers=0, seed=0,
                                target_sizes=(64,), allow_empty=True,
                                sample_transforms=picodet_transforms())
    loader.set_epoch(0)
    (batch,) = list(loader)
    assert batch["gt_bboxes"].shape == (3, 1, 4) and batch["gt_labels"].dtype == torch.int64
    masks = dict(zip(batch["image_ids"], batch["pad_gt_mask"][:, :, 0].tolist()))
    assert masks == {1: [0.0], 2: [1.0], 3: [0.0]}

    empty_only = TrainDataset(_write_coco(tmp_path / "e", [(blank, []), (blank, [])]),
                              picodet_transforms(), allow_empty=True)
    batch = list(build_train_loader(empty_only, batch_size=2, num_workers=0, seed=0,
                                    target_sizes=(64, 96)))[0]
    assert batch["gt_bboxes"].shape == (2, 0, 4) and batch["pad_gt_mask"].shape == (2, 0, 1)
    assert batch["images"].shape[:2] == (2, 3) and batch["images"].dtype == torch.uint8
    with pytest.raises(UserError, match="fewer than one batch"):
        build_train_loader(dataset, batch_size=2, num_workers=0, seed=0)  # one usable image


def test_keep_ratio_resize_pads_and_scales():
    sample = dict(image=np.full((50, 100, 3), 200, np.uint8),
                  boxes=np.array([[10, 5, 90, 45]], np.float32), labels=np.array([1]))
    resize = BatchRandomResize([80], random_size=True, random_interp=False, keep_ratio=True)
    (out,) = resize([sample], *resize.draw(np.random.RandomState(0)))
    assert out["image"].shape == (80, 80, 3)
    assert (out["image"][:40] == 200).all() and (out["image"][40:] == 0).all()
    np.testing.assert_allclose(out["boxes"], [[8, 4, 72, 36]])

"""One sample structure: masks (and crowd flags) follow the boxes through every geometric transform.

Each instance's mask is the filled rectangle of its box, so after any flip, crop, expansion, resize
or mosaic the tight box of the mask must equal the transformed box (up to the pixel grid, and for
the rotated mosaic up to the corner-bounds box ppdet computes).
"""
import json

import cv2
import numpy as np
import pytest
import torch

from mmdet_lite.data import instances
from mmdet_lite.data.coco import COCODataset
from mmdet_lite.data.collate import TrainCollate
from mmdet_lite.data.geometric import BatchRandomResize, RandomCrop, RandomExpand, RandomFlip
from mmdet_lite.data.mosaic import Mosaic
from mmdet_lite.data.train_loader import SampleRandom, TrainDataset, build_train_loader

BOXES = [(10, 8, 50, 40), (60, 30, 120, 90), (30, 55, 45, 70)]


def rect_sample(h=96, w=128, boxes=BOXES, image_id=1):
    image = np.full((h, w, 3), 40, np.uint8)
    masks = np.zeros((len(boxes), h, w), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        masks[i, y1:y2, x1:x2] = 1
        image[y1:y2, x1:x2] = 200
    return dict(image=image, boxes=np.array(boxes, np.float32),
                labels=np.arange(len(boxes), dtype=np.int64),
                is_crowd=np.array([False, True, False][:len(boxes)]), masks=masks,
                image_id=image_id)


def check_masks_follow(sample, atol, warped=False):
    assert sample["masks"].shape == (len(sample["boxes"]),) + sample["image"].shape[:2]
    assert sample["masks"].dtype == np.uint8
    assert len(sample["labels"]) == len(sample["is_crowd"]) == len(sample["boxes"])
    boxes, (h, w) = sample["boxes"], sample["image"].shape[:2]
    from_masks = instances.masks_to_boxes(sample["masks"])
    has_pixels = sample["masks"].any(axis=(1, 2))
    # every mask lies inside its box
    inside = (from_masks[:, :2] >= boxes[:, :2] - atol) & (from_masks[:, 2:] <= boxes[:, 2:] + atol)
    assert inside[has_pixels].all()
    if not warped:  # and fills it exactly: flips, crops, shifts and resizes keep rectangles
        np.testing.assert_allclose(from_masks[has_pixels], boxes[has_pixels], atol=atol)
        return
    # a warped rectangle fills its box unless the border cut it (then ppdet's clipped corner
    # bounds are larger than what is left) or it was a sliver cut at the mosaic canvas' border
    interior = ((boxes[:, :2] > 1) & (boxes[:, 2:] < [w - 1, h - 1])).all(axis=1)
    interior &= ((boxes[:, 2:] - boxes[:, :2]) >= 4).all(axis=1)
    assert interior.sum() >= 2
    np.testing.assert_allclose(from_masks[interior], boxes[interior], atol=atol)


def test_flip_crop_expand_follow():
    flip, expand, crop = RandomFlip(prob=1.0), RandomExpand(prob=0.0), RandomCrop()
    cropped = 0
    for seed in range(30):
        rng = SampleRandom(seed)
        sample = flip(rect_sample(), rng)
        check_masks_follow(sample, atol=0)
        sample = expand(sample, rng)
        check_masks_follow(sample, atol=0)
        before = sample["image"].shape
        sample = crop(sample, rng)
        cropped += sample["image"].shape != before
        # a box clipped by the crop is the clipped rectangle: the mask's bounds, to the pixel
        check_masks_follow(sample, atol=1.0)
        labels = sample["labels"]
        np.testing.assert_array_equal(sample["is_crowd"], labels == 1)  # flags follow labels
    assert cropped > 10


def test_batch_resize_follows_and_pads():
    for keep_ratio in (False, True):
        resize = BatchRandomResize((64, 80), random_size=False, keep_ratio=keep_ratio)
        (sample,) = resize([rect_sample()], (64, 80), cv2.INTER_LINEAR)
        assert sample["image"].shape == (64, 80, 3)
        check_masks_follow(sample, atol=1.0)


def test_mosaic_follows():
    mosaic = Mosaic(input_dim=(160, 160), degrees=(-10, 10), scale=(0.5, 1.5), shear=(-2, 2))
    mixed = 0
    for seed in range(12):
        parts = [rect_sample(image_id=i) for i in range(5)]
        out = mosaic(parts, SampleRandom(seed))
        assert out["image"].shape == (160, 160, 3)
        mixed += len(out["boxes"]) > 4 * len(BOXES)
        # rotated/sheared rectangles: ppdet's box is the bounds of the warped corners, which the
        # warped mask fills up to its pixel grid
        check_masks_follow(out, atol=2.0, warped=True)
        np.testing.assert_array_equal(out["is_crowd"], out["labels"] == 1)
    assert mixed > 0


def test_mosaic_without_masks_keeps_none():
    parts = [{k: v for k, v in rect_sample().items() if k != "masks"} for _ in range(5)]
    out = Mosaic(input_dim=(96, 96))(parts, SampleRandom(0))
    assert "masks" not in out and len(out["is_crowd"]) == len(out["boxes"])


def write_polygon_coco(root):
    (root / "imgs").mkdir(parents=True)
    images, anns = [], []
    for i in range(1, 5):
        cv2.imwrite(str(root / f"imgs/{i}.png"), np.full((90, 120, 3), 30 * i, np.uint8))
        images.append(dict(id=i, file_name=f"{i}.png", height=90, width=120))
        for j, (x1, y1, x2, y2) in enumerate(BOXES[:2]):
            polygon = [x1, y1, x2, y1, x2, y2, x1, y2]
            anns.append(dict(id=len(anns) + 1, image_id=i, category_id=1 + j, iscrowd=0,
                             bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                             segmentation=[polygon]))
    cats = [dict(id=1, name="a"), dict(id=2, name="b")]
    (root / "train.json").write_text(json.dumps(dict(images=images, annotations=anns,
                                                     categories=cats)))
    return COCODataset(root, "train.json", "imgs")


def test_polygons_become_bitmaps_and_reach_the_batch(tmp_path):
    dataset = write_polygon_coco(tmp_path)
    sample = TrainDataset(dataset, [], with_masks=True)[0]
    assert sample["masks"].shape == (2, 90, 120)
    np.testing.assert_allclose(instances.masks_to_boxes(sample["masks"]), sample["boxes"], atol=1)
    assert "masks" not in TrainDataset(dataset, [])[0]  # box-only families never decode them

    loader = build_train_loader(dataset, 2, 2, seed=3, target_sizes=(64, 96),
                                sample_transforms=[RandomFlip(), RandomCrop()], with_masks=True)
    loader.set_epoch(0)
    for batch in loader:
        masks, boxes = batch["gt_masks"], batch["gt_bboxes"]
        size = batch["images"].shape[-2:]
        assert masks.dtype == torch.uint8 and masks.shape == (*boxes.shape[:2], *size)
        real = batch["pad_gt_mask"][..., 0] > 0
        found = instances.masks_to_boxes(masks[real].numpy())
        np.testing.assert_allclose(found, boxes[real].numpy(), atol=1.5)


def test_collate_box_formats():
    resize = BatchRandomResize((64, 64), random_size=False, random_interp=False)
    sample = dict(rect_sample(h=64, w=64, boxes=[(0, 0, 32, 16)]), batch_seed=0)
    sample.pop("masks")
    xyxy = TrainCollate(resize)([dict(sample)])
    assert "gt_masks" not in xyxy
    np.testing.assert_allclose(xyxy["gt_bboxes"][0, 0].numpy(), [0, 0, 32, 16])
    detr = TrainCollate(resize, box_format="cxcywh")([dict(sample)])
    np.testing.assert_allclose(detr["gt_bboxes"][0, 0].numpy(), [0.25, 0.125, 0.5, 0.25])
    with pytest.raises(ValueError, match="box_format"):
        TrainCollate(resize, box_format="xywh")


def test_segmentation_to_bitmap_forms():
    polygon = [[2, 2, 8, 2, 8, 6, 2, 6]]
    bitmap = instances.segmentation_to_bitmap(polygon, 10, 12)
    assert bitmap.shape == (10, 12) and bitmap.dtype == np.uint8
    np.testing.assert_allclose(instances.masks_to_boxes(bitmap[None]), [[2, 2, 9, 7]], atol=1)
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(bitmap))
    np.testing.assert_array_equal(instances.segmentation_to_bitmap(rle, 10, 12), bitmap)
    assert instances.segmentation_to_bitmap(None, 4, 5).sum() == 0

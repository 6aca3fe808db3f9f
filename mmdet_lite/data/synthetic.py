"""A small generated COCO-format dataset ("shapes") for tests, demos and smoke training.

Each image has a noisy gradient background and 0-6 non-overlapping filled shapes of random
colour. Every instance has a polygon segmentation, the tight box of that polygon and the
pycocotools mask area, exactly like COCO's own annotations. Category ids are deliberately
non-contiguous (1, 3, 7, 10, 15) to exercise the id <-> label mapping. Output is deterministic
for a given seed; the train and val splits use independent streams, so changing ``num_train``
does not change the val split.
"""
import os
import warnings

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from mmdet_lite.utils.errors import UserError
from mmdet_lite.utils.fileio import write_json_atomic

__all__ = ["SHAPE_CATEGORIES", "make_shapes_dataset"]

SHAPE_CATEGORIES = ((1, "circle"), (3, "square"), (7, "triangle"), (10, "hexagon"), (15, "star"))
_VERTICES = {"circle": 40, "square": 4, "triangle": 3, "hexagon": 6, "star": 10}


def _polygon(kind, cx, cy, radius, angle):
    """Vertices (K, 2) of a shape with circumradius ``radius`` rotated by ``angle``."""
    n = _VERTICES[kind]
    theta = angle + np.arange(n) * 2 * np.pi / n
    r = np.full(n, float(radius))
    if kind == "star":
        r[1::2] *= 0.45
    return np.stack([cx + r * np.cos(theta), cy + r * np.sin(theta)], axis=1)


def _background(rng, h, w):
    base = rng.integers(30, 226, size=3).astype(np.float32)
    gx, gy = rng.uniform(-40, 40, size=(2, 3)).astype(np.float32)
    ramp_x = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :, None] * gx
    ramp_y = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None, None] * gy
    return base + ramp_x + ramp_y, base


def _render_image(rng, size_range, max_objects, empty_prob):
    """-> (BGR uint8 image, [(category_id, polygon (K, 2))])."""
    (min_h, min_w), (max_h, max_w) = size_range
    h, w = int(rng.integers(min_h, max_h + 1)), int(rng.integers(min_w, max_w + 1))
    canvas, base = _background(rng, h, w)
    num = 0 if rng.random() < empty_prob else int(rng.integers(1, max_objects + 1))
    placed, instances = [], []
    for _ in range(num):
        cat_id, kind = SHAPE_CATEGORIES[int(rng.integers(len(SHAPE_CATEGORIES)))]
        for _attempt in range(30):
            radius = float(np.exp(rng.uniform(np.log(8), np.log(min(h, w) / 4))))
            cx = rng.uniform(radius + 2, w - radius - 2)
            cy = rng.uniform(radius + 2, h - radius - 2)
            poly = np.round(_polygon(kind, cx, cy, radius, rng.uniform(0, 2 * np.pi)), 2)
            x1, y1 = poly.min(axis=0) - 3
            x2, y2 = poly.max(axis=0) + 3
            if all(x2 < a1 or a2 < x1 or y2 < b1 or b2 < y1 for a1, b1, a2, b2 in placed):
                break
        else:
            continue
        colour = rng.integers(0, 256, size=3).astype(np.float32)
        while np.abs(colour - base).sum() < 150:
            colour = rng.integers(0, 256, size=3).astype(np.float32)
        rle = mask_utils.frPyObjects([poly.reshape(-1).tolist()], h, w)
        with warnings.catch_warnings():  # pycocotools' decode trips a numpy 2 DeprecationWarning
            warnings.simplefilter("ignore", DeprecationWarning)
            mask = mask_utils.decode(rle)[:, :, 0].astype(bool)
        canvas[mask] = colour
        placed.append((x1, y1, x2, y2))
        instances.append((cat_id, poly))
    canvas += rng.normal(0.0, 8.0, size=canvas.shape).astype(np.float32)
    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return image, instances


def _annotation(ann_id, image_id, cat_id, poly, h, w):
    seg = [poly.reshape(-1).tolist()]
    area = float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(seg, h, w))))
    x1, y1 = poly.min(axis=0)
    x2, y2 = poly.max(axis=0)
    bbox = [round(float(x1), 2), round(float(y1), 2), round(float(x2 - x1), 2),
            round(float(y2 - y1), 2)]
    return dict(id=ann_id, image_id=image_id, category_id=cat_id, bbox=bbox, area=area,
                segmentation=seg, iscrowd=0)



def _make_split(out_dir, split, num_images, rng, size_range, max_objects, empty_prob):
    image_dir = os.path.join(out_dir, split)
    os.makedirs(image_dir, exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        image, instances = _render_image(rng, size_range, max_objects, empty_prob)
        h, w = image.shape[:2]
        file_name = f"{image_id:06d}.jpg"
        if not cv2.imwrite(os.path.join(image_dir, file_name), image,
                           [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise UserError(f"cannot write image {os.path.join(image_dir, file_name)}")
        images.append(dict(id=image_id, file_name=file_name, width=w, height=h))
        for cat_id, poly in instances:
            annotations.append(_annotation(len(annotations) + 1, image_id, cat_id, poly, h, w))
    categories = [dict(id=cid, name=name, supercategory="shape") for cid, name in SHAPE_CATEGORIES]
    data = dict(info=dict(description=f"mmdet_lite synthetic shapes ({split})", version="1.0"),
                licenses=[], images=images, annotations=annotations, categories=categories)
    write_json_atomic(data, os.path.join(out_dir, "annotations", f"{split}.json"))
    return data


def make_shapes_dataset(out_dir, num_train=200, num_val=50, seed=0, min_size=(240, 320),
                        max_size=(480, 640), max_objects=6, empty_prob=0.1):
    """Write ``out_dir/{train,val}/*.jpg`` and ``out_dir/annotations/{train,val}.json``.

    Args:
        out_dir: output folder (created).
        num_train, num_val: image counts per split.
        seed: the output is a pure function of the arguments.
        min_size, max_size: ``(h, w)`` bounds of the random image sizes.
        max_objects: most shapes per image; ``empty_prob`` of the images have none.
    Returns:
        dict ``{"train": coco_dict, "val": coco_dict}``.
    """
    out_dir = os.fspath(out_dir)
    if num_train < 0 or num_val < 0:
        raise UserError(f"image counts must be >= 0, got num_train {num_train}, num_val {num_val}")
    try:
        os.makedirs(os.path.join(out_dir, "annotations"), exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create output folder {out_dir}: {err.strerror}") from err
    size_range = (tuple(min_size), tuple(max_size))
    result = {}
    for stream, (split, num) in enumerate((("train", num_train), ("val", num_val))):
        rng = np.random.default_rng([seed, stream])
        result[split] = _make_split(out_dir, split, num, rng, size_range, max_objects, empty_prob)
    return result

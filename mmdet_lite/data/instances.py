"""The training sample and the geometry of its instances, in one place.

A *sample* is a dict that every training transform takes and returns:

- ``image``: (H, W, 3) uint8 RGB (uint8 until the model normalises it on its device);
- per instance, aligned along the first axis (``INSTANCE_FIELDS``; each optional but ``boxes``):
  ``boxes`` (n, 4) float32 x1 y1 x2 y2 in pixels, ``labels`` (n,) int64 contiguous class
  indices, ``is_crowd`` (n,) bool, ``masks`` (n, H, W) uint8 bitmaps of the image's size
  (polygons and RLE are decoded to bitmaps at load, ``segmentation_to_bitmap``);
- bookkeeping: ``image_id`` int, ``batch_seed`` int (set by ``TrainDataset``), after a deferred
  ``RandomDistort`` ``color_transform`` (3, 4) float32, and after ``PadBatch`` ``input_size``
  (h, w), the image's size before padding.

Transforms change the geometry of a sample only through the functions below (``select``,
``flip_horizontal``, ``crop``, ``place_on_canvas``, ``resize``, ``warp_affine_masks``), so every
instance field present follows the image. Boxes are computed exactly as ppdet computes them (the
draw-for-draw parity tests hold); masks use nearest-neighbour resampling.
"""
import cv2
import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["INSTANCE_FIELDS", "num_instances", "select", "concatenate", "flip_horizontal", "crop",
           "place_on_canvas", "resize", "scale_boxes", "resize_masks", "resize_masks_to",
           "warp_affine_masks",
           "segmentation_to_bitmap", "masks_to_boxes"]

INSTANCE_FIELDS = ("boxes", "labels", "is_crowd", "masks")
"""Per-instance sample fields; transforms keep them aligned (``select``, ``concatenate``)."""


def num_instances(sample):
    """Number of instances of ``sample`` (the length of its ``boxes``)."""
    return len(sample["boxes"])


def select(sample, keep):
    """Keep the instances ``keep`` (bool mask or indices) in every instance field; in place."""
    for key in INSTANCE_FIELDS:
        if key in sample:
            sample[key] = sample[key][keep]
    return sample


def concatenate(parts, image_shape):
    """Instance fields of several samples (all on one image of ``image_shape`` (H, W)) -> one dict.

    ``parts`` are dicts holding ``boxes`` and ``labels``; a field that some part lacks is dropped
    (``masks`` only when every part has masks of ``image_shape``).
    """
    fields = [k for k in INSTANCE_FIELDS if all(k in p for p in parts)]
    out = {}
    for key in fields:
        values = [p[key] for p in parts]
        if key == "masks":
            values = [v.reshape(-1, *image_shape) for v in values]
        elif key == "boxes":
            values = [np.asarray(v, np.float32).reshape(-1, 4) for v in values]
        out[key] = np.concatenate(values)
    return out


def _cv_per_mask(masks, func):
    """Apply a cv2 image function to each (H, W) mask of (n, H, W) masks; -> (n, H', W').

    One 2-D call per mask: faster than multi-channel calls, whose (H, W, n) transposes dominate.
    """
    return np.stack([func(np.ascontiguousarray(mask)) for mask in masks])


def flip_horizontal(sample):
    """Mirror the image and its instances left-right: ``x -> width - x`` (ppdet's flip)."""
    image = sample["image"]
    width = image.shape[1]
    sample["image"] = cv2.flip(image, 1)
    boxes = sample["boxes"]
    sample["boxes"] = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0],
                                boxes[:, 3]], axis=1).astype(np.float32, copy=False)
    if "masks" in sample:
        sample["masks"] = np.ascontiguousarray(sample["masks"][:, :, ::-1])
    return sample


def crop(sample, window, keep, boxes):
    """Crop to ``window`` ``(x1, y1, x2, y2)`` ints, keep instances ``keep`` with new ``boxes``.

    ``boxes`` (n, 4) are the already clipped and shifted boxes of every instance (the caller
    computes them as its reference does); masks are cut to the window.
    """
    x1, y1, x2, y2 = window
    sample["image"] = sample["image"][y1:y2, x1:x2]
    if "masks" in sample:
        sample["masks"] = np.ascontiguousarray(sample["masks"][:, y1:y2, x1:x2])
    select(sample, keep)
    sample["boxes"] = boxes[keep]
    return sample


def place_on_canvas(sample, canvas, x, y):
    """Paste the image on ``canvas`` (h, w, 3) at ``(x, y)``; instances shift with it."""
    image = sample["image"]
    height, width = image.shape[:2]
    canvas[y:y + height, x:x + width] = image
    sample["image"] = canvas
    sample["boxes"] = sample["boxes"] + np.array([x, y, x, y], dtype=np.float32)
    if "masks" in sample:
        masks = np.zeros((len(sample["masks"]),) + canvas.shape[:2], dtype=np.uint8)
        masks[:, y:y + height, x:x + width] = sample["masks"]
        sample["masks"] = masks
    return sample


def scale_boxes(boxes, scale_x, scale_y, out_w, out_h):
    """Boxes (n, 4) scaled by ``(scale_x, scale_y)`` and clipped to ``[0, out_w] x [0, out_h]``."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    boxes[:, 0::2] = np.clip(boxes[:, 0::2] * scale_x, 0, out_w)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2] * scale_y, 0, out_h)
    return boxes


def resize_masks(masks, scale_x, scale_y, out_shape=None, interpolation=cv2.INTER_NEAREST):
    """(n, H, W) masks resized with cv2's ``fx``/``fy`` form (nearest unless ``interpolation``
    says otherwise), then cut or zero-padded to ``out_shape`` (h, w) when given, bottom/right as
    images are padded."""
    if len(masks) == 0:
        h, w = out_shape if out_shape is not None else (
            int(round(masks.shape[1] * scale_y)), int(round(masks.shape[2] * scale_x)))
        return np.zeros((0, h, w), dtype=np.uint8)
    out = _cv_per_mask(masks, lambda m: cv2.resize(m, None, None, fx=scale_x, fy=scale_y,
                                                    interpolation=interpolation))
    if out_shape is not None and out.shape[1:] != tuple(out_shape):
        padded = np.zeros((len(out),) + tuple(out_shape), dtype=np.uint8)
        h, w = min(out.shape[1], out_shape[0]), min(out.shape[2], out_shape[1])
        padded[:, :h, :w] = out[:, :h, :w]
        out = padded
    return out


def resize(sample, out_image, scale_x, scale_y, out_w, out_h):
    """Set the resized ``out_image`` and scale the instances by ``(scale_x, scale_y)``.

    Boxes are clipped to ``[0, out_w] x [0, out_h]`` (the resized content, before any padding);
    masks are resized (nearest) to the content and padded to ``out_image``'s size.
    """
    sample["image"] = out_image
    sample["boxes"] = scale_boxes(sample["boxes"], scale_x, scale_y, out_w, out_h)
    if "masks" in sample:
        sample["masks"] = resize_masks(sample["masks"], scale_x, scale_y, out_image.shape[:2])
    return sample


def resize_masks_to(masks, width, height):
    """(n, H, W) masks resized to ``(height, width)`` with cv2's ``dsize`` form (nearest)."""
    if len(masks) == 0:
        return np.zeros((0, height, width), dtype=np.uint8)
    return _cv_per_mask(masks, lambda m: cv2.resize(m, (int(width), int(height)),
                                                     interpolation=cv2.INTER_NEAREST))


def warp_affine_masks(masks, matrix, out_size):
    """(n, H, W) masks warped by the 2x3 ``matrix`` to ``out_size`` ``(w, h)`` (nearest, 0 fill)."""
    if len(masks) == 0:
        return np.zeros((0, out_size[1], out_size[0]), dtype=np.uint8)
    matrix = np.asarray(matrix, dtype=np.float64)
    return _cv_per_mask(masks, lambda m: cv2.warpAffine(
        m, matrix, tuple(int(s) for s in out_size), flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0))


def segmentation_to_bitmap(segmentation, height, width):
    """A COCO ``segmentation`` (polygons, uncompressed or compressed RLE) -> (H, W) uint8 0/1.

    ``None`` or an empty list (an instance without a mask) gives an all-zero bitmap.
    """
    if not segmentation:
        return np.zeros((height, width), dtype=np.uint8)
    if isinstance(segmentation, list):  # polygons: one RLE per part, merged
        polygons = [p for p in segmentation if len(p) >= 6]
        if not polygons:
            return np.zeros((height, width), dtype=np.uint8)
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    elif isinstance(segmentation.get("counts"), list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return np.ascontiguousarray(mask_utils.decode(rle), dtype=np.uint8)


def masks_to_boxes(masks):
    """Tight boxes (n, 4) float32 x1 y1 x2 y2 (pixel edges) of (n, H, W) masks; 0 for empty ones."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, mask in enumerate(masks):
        ys, xs = np.nonzero(mask)
        if len(xs):
            boxes[i] = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return boxes

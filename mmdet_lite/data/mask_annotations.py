"""Checks of a COCO file's instance masks for a mask exp, run once in the main process.

ppdet and pycocotools are lenient with masks (pycocotools reads a 4-number polygon as a box, an
odd coordinate count drops the last number, a missing ``segmentation`` fails deep in a loader
worker). For a mask exp every problem below is a ``UserError`` naming the annotation file, the
annotation and its image:

- no annotation has a ``segmentation`` (box-only data, e.g. VOC converted by
  ``tools/voc2coco.py``), or one annotation has none or an empty one;
- a polygon that is not a flat list of numbers, has an odd number of coordinates or fewer than
  3 points; an RLE whose ``size`` is not the image's ``[height, width]``;
- a polygon lying wholly outside the image (its mask would be empty).

A polygon partly outside the image is clipped to it when rasterised (pycocotools, as ppdet's
``Poly2Mask``); a mask that becomes empty after augmentation claims no grid cell
(``Gt2Solov2Target``).
"""
import numbers

from mmdet_lite.utils.errors import UserError

__all__ = ["check_mask_annotations"]


def _polygon_problem(polygon):
    """Why ``polygon`` (a flat ``[x1, y1, x2, y2, ...]`` list) is unusable, or None."""
    if not isinstance(polygon, (list, tuple)) or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in polygon):
        return "a polygon that is not a flat list of numbers"
    if len(polygon) % 2:
        return f"a polygon with an odd number of coordinates ({len(polygon)})"
    if len(polygon) < 6:
        return f"a polygon of {len(polygon) // 2} points (at least 3 are needed)"
    return None


def _outside(polygons, width, height):
    """True when every point of ``polygons`` lies beyond one side of the ``width x height``
    image, i.e. the rasterised mask is empty."""
    xs = [v for p in polygons for v in p[0::2]]
    ys = [v for p in polygons for v in p[1::2]]
    return max(xs) <= 0 or min(xs) >= width or max(ys) <= 0 or min(ys) >= height


def _segmentation_problem(segm, image):
    """Why the ``segmentation`` of an annotation on ``image`` (its COCO record) is unusable."""
    height, width = image.get("height"), image.get("width")
    if isinstance(segm, dict):
        size = segm.get("size")
        if "counts" not in segm or not isinstance(size, (list, tuple)) or len(size) != 2:
            return "an RLE without 'counts' and a [height, width] 'size'"
        if height is not None and width is not None and list(size) != [height, width]:
            return f"an RLE of size {list(size)} on an image of [height, width] {[height, width]}"
        return None
    if not isinstance(segm, list):
        return f"a 'segmentation' that is neither polygons nor RLE ({type(segm).__name__})"
    for polygon in segm:
        problem = _polygon_problem(polygon)
        if problem:
            return problem
    if height is not None and width is not None and _outside(segm, width, height):
        return f"polygons lying wholly outside the {width}x{height} image"
    return None


def check_mask_annotations(dataset, owner):
    """Raise ``UserError`` when the annotations of ``dataset`` (a ``COCODataset``) cannot give
    every instance a mask (see the module docstring); ``owner`` names the exp in the message."""
    annotations = dataset.coco.dataset.get("annotations", [])
    path = dataset.ann_path
    if annotations and not any("segmentation" in ann for ann in annotations):
        raise UserError(f"annotation file {path} has no instance masks (no annotation has a "
                        "'segmentation': box-only data, e.g. VOC converted by "
                        f"tools/voc2coco.py); {owner} needs polygon or RLE masks")
    for ann in annotations:
        where = f"annotation file {path}: annotation {ann.get('id')} (image {ann.get('image_id')})"
        segm = ann.get("segmentation")
        if not segm:
            raise UserError(f"{where} has no 'segmentation'; {owner} needs a polygon or RLE "
                            "mask for every instance")
        problem = _segmentation_problem(segm, dataset.coco.imgs.get(ann.get("image_id"), {}))
        if problem:
            raise UserError(f"{where} has {problem}")

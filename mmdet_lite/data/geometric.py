"""Geometric transforms: ppdet's crop, flip, expand and (batch) resize on uint8 samples; mmdet's
``RandomCrop`` and ``Pad`` (RTMDet; mmcv's ``RandomFlip`` is ppdet's, draw for draw).

Samples are the dicts of ``mmdet_lite.data.instances``; every instance field present (boxes,
labels, crowd flags, masks) follows the image through that module's functions. Sample transforms
are called as ``t(sample, rng)`` with a ``SampleRandom`` and draw from it in exactly the order and
with exactly the calls of ppdet's operators on the global numpy RNG, so one seed gives ppdet's
crop, flip and expansion. ``TestTransform`` is the evaluation / inference resize.
"""
import cv2
import numpy as np

from mmdet_lite.data import instances
from mmdet_lite.data.resize import INTERPOLATIONS, resize_scales

__all__ = ["INTERPOLATIONS", "RandomCrop", "RandomFlip", "RandomExpand", "BatchRandomResize",
           "TestTransform", "MMDetRandomCrop", "Pad"]

def _iou_with_crop(boxes, box_areas, crop):
    """IoU (n,) of float32 boxes (n, 4) with one crop box (4,), in float32 as ppdet computes it."""
    top_left = np.maximum(boxes[:, :2], crop[:2])
    wh = np.minimum(boxes[:, 2:], crop[2:]) - top_left
    inter = wh[:, 0] * wh[:, 1] * (wh > 0).all(axis=1)
    crop_area = (crop[2] - crop[0]) * (crop[3] - crop[1])
    return inter / (box_areas + crop_area - inter + 1e-10)


class RandomCrop:
    """ppdet ``RandomCrop`` (SSD-style IoU-constrained crop) on a sample; images without boxes pass.

    A crop candidate has area ratio ``scale**2`` (scale in ``scaling``) and an aspect ratio in
    ``aspect_ratio``; it is accepted when its IoU with some box reaches a randomly chosen threshold
    (all boxes with ``cover_all_box``) and at least one box centre lies inside it. Boxes whose
    centre falls outside are dropped, the others clipped to the crop (masks are cut to it).
    ``no_crop`` is one more choice when ``allow_no_crop``. ``prob`` is ppdet develop's extra
    argument (RT-DETR's reader): the crop is tried with probability ``prob``, drawn from ``rng``
    (ppdet draws it from Python's ``random``; no draw at all when ``prob`` is 1, ppdet 2.6.0's
    ``RandomCrop``).

    Difference from ppdet: where a candidate is as tall (wide) as the image, ppdet's
    ``randint(0, 0)`` raises; here the offset is 0.
    """

    def __init__(self, aspect_ratio=(0.5, 2.0), thresholds=(0.0, 0.1, 0.3, 0.5, 0.7, 0.9),
                 scaling=(0.3, 1.0), num_attempts=50, allow_no_crop=True, cover_all_box=False,
                 prob=1.0):
        self.prob = float(prob)
        self.aspect_ratio = None if aspect_ratio is None else tuple(aspect_ratio)
        self.thresholds = list(thresholds)
        self.scaling = tuple(scaling)
        self.num_attempts = int(num_attempts)
        self.allow_no_crop = allow_no_crop
        self.cover_all_box = cover_all_box

    def _draw_crop(self, h, w, rng):
        """One candidate ``[x1, y1, x2, y2]`` (int) or None (ppdet's aspect-ratio rejection)."""
        scale = rng.uniform(*self.scaling)
        if self.aspect_ratio is not None:
            min_ar, max_ar = self.aspect_ratio
            ratio = rng.uniform(max(min_ar, scale ** 2), min(max_ar, scale ** -2))
            h_scale, w_scale = scale / np.sqrt(ratio), scale * np.sqrt(ratio)
        else:
            h_scale, w_scale = rng.uniform(*self.scaling), rng.uniform(*self.scaling)
        crop_h, crop_w = h * h_scale, w * w_scale
        if self.aspect_ratio is None and not 0.5 <= crop_h / crop_w <= 2.0:
            return None
        crop_h, crop_w = int(crop_h), int(crop_w)
        y = rng.randint(0, max(h - crop_h, 1))
        x = rng.randint(0, max(w - crop_w, 1))
        return [x, y, x + crop_w, y + crop_h]

    def __call__(self, sample, rng):
        if self.prob < 1.0 and rng.random_sample() > self.prob:
            return sample
        boxes = sample["boxes"]
        if len(boxes) == 0:
            return sample
        h, w = sample["image"].shape[:2]
        box_areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        choices = self.thresholds + (["no_crop"] if self.allow_no_crop else [])
        rng.shuffle(choices)
        for thresh in choices:
            if isinstance(thresh, str):
                return sample
            for _ in range(self.num_attempts):
                crop = self._draw_crop(h, w, rng)
                if crop is None:
                    continue
                crop_f = np.asarray(crop, dtype=np.float32)
                iou = _iou_with_crop(boxes, box_areas, crop_f)
                if iou.max() < thresh or (self.cover_all_box and iou.min() < thresh):
                    continue
                cropped = np.concatenate([np.maximum(boxes[:, :2], crop_f[:2]) - crop_f[:2],
                                          np.minimum(boxes[:, 2:], crop_f[2:]) - crop_f[:2]], 1)
                centers = (boxes[:, :2] + boxes[:, 2:]) / 2
                keep = ((crop_f[:2] <= centers) & (centers < crop_f[2:])).all(axis=1)
                keep &= (cropped[:, :2] < cropped[:, 2:]).all(axis=1)
                if keep.any():
                    return instances.crop(sample, crop, keep, cropped)
        return sample

    def __repr__(self):
        return (f"{type(self).__name__}(aspect_ratio={self.aspect_ratio}, thresholds="
                f"{self.thresholds}, scaling={self.scaling}, num_attempts={self.num_attempts}, "
                f"allow_no_crop={self.allow_no_crop}, cover_all_box={self.cover_all_box}, "
                f"prob={self.prob})")



class RandomFlip:
    """ppdet ``RandomFlip``: horizontal flip with probability ``prob``; ``x -> width - x``
    for boxes, masks mirrored."""

    def __init__(self, prob=0.5):
        self.prob = float(prob)

    def __call__(self, sample, rng):
        if rng.uniform(0, 1) < self.prob:
            sample = instances.flip_horizontal(sample)
        return sample

    def __repr__(self):
        return f"{type(self).__name__}(prob={self.prob})"



class MMDetRandomCrop:
    """mmdet ``RandomCrop(crop_size, crop_type="absolute")``: a ``crop_size`` ``(w, h)`` window
    (cut to the image) at offsets ``rng.randint(0, margin + 1)`` (y, then x); boxes shifted and
    clipped to it, those not overlapping it dropped, masks cut.

    Without a box left (and ``allow_negative_crop`` False) it returns ``None``: the data set then
    takes another image, as mmdet's ``BaseDataset`` refetches.
    """

    def __init__(self, crop_size, allow_negative_crop=False, bbox_clip_border=True):
        self.crop_size = tuple(int(s) for s in crop_size)
        if len(self.crop_size) != 2 or min(self.crop_size) <= 0:
            raise ValueError(f"RandomCrop: crop_size must be (w, h) > 0, got {crop_size!r}")
        if not bbox_clip_border:
            raise ValueError("RandomCrop: only bbox_clip_border True (mmdet's RTMDet) is "
                             "supported")
        self.allow_negative_crop = bool(allow_negative_crop)

    def __call__(self, sample, rng):
        height, width = sample["image"].shape[:2]
        crop_h, crop_w = min(self.crop_size[1], height), min(self.crop_size[0], width)
        y1 = int(rng.randint(0, max(height - crop_h, 0) + 1))
        x1 = int(rng.randint(0, max(width - crop_w, 0) + 1))
        boxes = sample["boxes"] - np.array([x1, y1, x1, y1], dtype=np.float32)
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, crop_w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, crop_h)
        keep = ((boxes[:, 0] < crop_w) & (boxes[:, 2] > 0) & (boxes[:, 1] < crop_h)
                & (boxes[:, 3] > 0))
        if not keep.any() and not self.allow_negative_crop:
            return None
        return instances.crop(sample, (x1, y1, x1 + crop_w, y1 + crop_h), keep, boxes)

    def __repr__(self):
        return (f"{type(self).__name__}(crop_size={self.crop_size}, allow_negative_crop="
                f"{self.allow_negative_crop})")


class Pad:
    """mmdet ``Pad(size=(w, h), pad_val=dict(img=...))``: pad bottom and right to ``size`` with
    ``pad_val`` (masks with 0); instances do not move. Draws nothing."""

    def __init__(self, size, pad_val=114):
        self.size = tuple(int(s) for s in size)
        if isinstance(pad_val, dict):
            pad_val = pad_val.get("img", 0)
        value = np.asarray(pad_val).reshape(-1)
        self.pad_val = tuple(int(v) for v in np.broadcast_to(value, (3,)))

    def __call__(self, sample, rng=None):
        height, width = sample["image"].shape[:2]
        out_w, out_h = self.size
        if height > out_h or width > out_w:
            raise ValueError(f"Pad: the image ({height}x{width}) is larger than size "
                             f"{self.size} (w, h)")
        canvas = np.empty((out_h, out_w, 3), dtype=np.uint8)
        canvas[:] = self.pad_val
        return instances.place_on_canvas(sample, canvas, 0, 0)

    def __repr__(self):
        return f"{type(self).__name__}(size={self.size}, pad_val={self.pad_val})"


class RandomExpand:
    """ppdet ``RandomExpand``: with probability ``1 - prob``, place the image at a random offset
    on a canvas ``U(1, ratio)`` times larger (both sides, truncated to int) filled with
    ``fill_value`` (RGB, rounded to uint8); instances shift by the offset (masks zero-padded).
    ppdet keeps the float32 image and its fill unrounded: here the fill is rounded (124, 116, 104
    for the ImageNet mean)."""

    def __init__(self, ratio=4.0, prob=0.5, fill_value=(127.5, 127.5, 127.5)):
        if ratio <= 1.01:
            raise ValueError(f"RandomExpand: ratio must be larger than 1.01, got {ratio}")
        if np.isscalar(fill_value):
            fill_value = (fill_value,) * 3
        self.ratio, self.prob = float(ratio), float(prob)
        self.fill_value = tuple(float(v) for v in fill_value)

    def __call__(self, sample, rng):
        if rng.uniform(0.0, 1.0) < self.prob:
            return sample
        image = sample["image"]
        height, width = image.shape[:2]
        ratio = rng.uniform(1.0, self.ratio)
        h, w = int(height * ratio), int(width * ratio)
        if not (h > height and w > width):
            return sample
        y = rng.randint(0, h - height)
        x = rng.randint(0, w - width)
        fill = np.clip(np.round(self.fill_value), 0, 255).astype(np.uint8)
        canvas = np.empty((h, w, 3), dtype=np.uint8)
        canvas[:] = fill
        return instances.place_on_canvas(sample, canvas, x, y)

    def __repr__(self):
        return (f"{type(self).__name__}(ratio={self.ratio}, prob={self.prob}, "
                f"fill_value={self.fill_value})")



class BatchRandomResize:
    """ppdet ``BatchRandomResize``: one size (and interpolation) per batch, boxes scaled.

    ``draw(rng)`` makes ppdet's two draws (``choice`` of a size index, then ``choice`` of
    ``INTERPOLATIONS``); ``__call__(samples, size, interp)`` resizes every sample with cv2's
    ``fx``/``fy`` form as ppdet's ``Resize`` and scales boxes, clipped to the resized image
    (masks: nearest-neighbour).
    ``keep_ratio=True`` scales the long side to the target and pads bottom/right with zeros to the
    target size (ppdet would need a ``PadBatch`` after it). Images stay uint8.

    Args:
        target_sizes: a list of sizes (int or ``(h, w)``), or one size when ``random_size=False``.
        interp: the cv2 flag used when ``random_interp=False`` (ppdet's default INTER_NEAREST).
    """

    def __init__(self, target_sizes, random_size=True, random_interp=True, keep_ratio=False,
                 interp=cv2.INTER_NEAREST):
        def as_hw(size):
            return (int(size), int(size)) if np.isscalar(size) else tuple(int(s) for s in size)

        if random_size:
            self.target_sizes = [as_hw(s) for s in target_sizes]
            if not self.target_sizes:
                raise ValueError("BatchRandomResize: target_sizes is empty")
        else:
            self.target_sizes = [as_hw(target_sizes)]
        self.random_size, self.random_interp = random_size, random_interp
        self.keep_ratio, self.interp = keep_ratio, interp

    def draw(self, rng):
        """-> ``((h, w), interp)`` for one batch, drawn as ppdet draws them."""
        size = self.target_sizes[rng.choice(len(self.target_sizes))] if self.random_size \
            else self.target_sizes[0]
        interp = int(rng.choice(INTERPOLATIONS)) if self.random_interp else self.interp
        return size, interp

    def resize(self, sample, size, interp):
        """Resize one sample in place to ``size`` ``(h, w)``; returns it."""
        image = sample["image"]
        h, w = image.shape[:2]
        th, tw = size
        scale_x, scale_y, out_w, out_h = resize_scales(h, w, size, self.keep_ratio)
        resized = cv2.resize(image, None, None, fx=scale_x, fy=scale_y, interpolation=interp)
        if self.keep_ratio:
            canvas = np.zeros((th, tw, 3), dtype=resized.dtype)
            rh, rw = min(resized.shape[0], th), min(resized.shape[1], tw)
            canvas[:rh, :rw] = resized[:rh, :rw]
            resized = canvas
        return instances.resize(sample, resized, scale_x, scale_y, out_w, out_h)

    def __call__(self, samples, size, interp):
        return [self.resize(s, size, interp) for s in samples]

    def __repr__(self):
        return (f"{type(self).__name__}(target_sizes={self.target_sizes}, random_size="
                f"{self.random_size}, random_interp={self.random_interp}, keep_ratio="
                f"{self.keep_ratio}, interp={self.interp})")



class TestTransform:
    """Paddle's ``Decode`` colour swap + ``Resize``, without normalisation.

    Call with a BGR uint8 image (H, W, 3); returns ``(image, scale_factor)`` where ``image`` is
    an RGB uint8 array (3, th, tw) and ``scale_factor`` is float32 ``[th / H, tw / W]``
    (scale_y, scale_x). The resize uses cv2's ``fx``/``fy`` form exactly as ppdet's
    ``Resize.apply_image``, so the pixels are Paddle's. Normalisation happens in the model.
    ``keep_ratio`` (SOLOv2's EvalReader): one scale for both sides, the short side to at most
    ``min(target_size)`` and the long side to at most ``max(target_size)``; ppdet resizes the
    normalised float image there, we the uint8 one (the same up to rounding: the resize is
    linear).

    Args:
        target_size: ``(h, w)`` or an int for a square size.
        interp: cv2 interpolation flag (PicoDet's EvalReader uses ``interp: 2``, INTER_CUBIC).
        keep_ratio: ppdet's ``Resize(keep_ratio=True)``.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, target_size, interp=cv2.INTER_CUBIC, keep_ratio=False):
        if isinstance(target_size, int):
            target_size = (target_size, target_size)
        self.target_size = (int(target_size[0]), int(target_size[1]))
        self.interp = interp
        self.keep_ratio = keep_ratio

    def __call__(self, image):
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        scale_x, scale_y, _, _ = resize_scales(h, w, self.target_size, self.keep_ratio)
        resized = cv2.resize(rgb, None, None, fx=scale_x, fy=scale_y, interpolation=self.interp)
        scale_factor = np.asarray([scale_y, scale_x], dtype=np.float32)
        return np.ascontiguousarray(resized.transpose(2, 0, 1)), scale_factor

    def __repr__(self):
        return (f"{type(self).__name__}(target_size={self.target_size}, interp={self.interp}, "
                f"keep_ratio={self.keep_ratio})")

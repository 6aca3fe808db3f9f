"""PicoDet training transforms: ppdet 2.6.0's TrainReader on uint8 images.

A *sample* is a dict with ``image`` (H, W, 3) uint8 RGB, ``boxes`` (n, 4) float32 x1y1x2y2 in
pixels, ``labels`` (n,) int64 and ``image_id``. Sample transforms are called as
``t(sample, rng)`` with a ``SampleRandom`` (a ``numpy.random.RandomState``); they draw from it in
exactly the order and with exactly the calls ppdet's operators use on the global numpy RNG, so one
seed gives the same crop, flip and colour draws as ppdet seeded with ``np.random.seed(seed)``.
Operators that ppdet draws from Python's ``random`` (``mosaic_transforms``) use ``rng.py``.

Images stay uint8 until the model. ppdet's ``RandomDistort`` works in float32 without clipping;
its four operations are affine in colour, so they are fused here into one ``3x4`` colour transform
that is either applied at once with ``cv2.transform`` (rounded and saturated to uint8: the only
difference from ppdet) or, with ``defer=True``, stored as ``sample["color_transform"]`` and applied
on the model's device by ``apply_color_transform`` after the resize (exact: resizing is linear
with weights summing to one, so it commutes with an affine colour map).
"""
import random

import cv2
import numpy as np
import torch

__all__ = ["INTERPOLATIONS", "SampleRandom", "RandomCrop", "RandomFlip", "RandomDistort", "draw_distortion",
           "BatchRandomResize", "pad_gt", "apply_color_transform", "picodet_sample_transforms"]

INTERPOLATIONS = (cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_AREA, cv2.INTER_CUBIC,
                  cv2.INTER_LANCZOS4)
"""ppdet ``BatchRandomResize``'s interpolation list (``random_interp`` picks one per batch)."""

_INSTANCE_KEYS = ("boxes", "labels", "is_crowd")
_LUMA = np.array([0.299, 0.587, 0.114])
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.321], [0.211, -0.523, 0.311]])
_YIQ_TO_RGB = np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.107, 1.705]])


class SampleRandom(np.random.RandomState):
    """A sample's random source: ``RandomState(seed)`` plus ``py``, a ``random.Random(seed)``.

    ppdet seeded with ``np.random.seed(seed); random.seed(seed)`` draws the same numbers from its
    two global generators as sample transforms draw from ``rng`` and ``rng.py``.
    """

    def __init__(self, seed):
        super().__init__(seed)
        self.py = random.Random(seed)


def _take_instances(sample, keep):
    for key in _INSTANCE_KEYS:
        if key in sample:
            sample[key] = sample[key][keep]
    return sample


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
    centre falls outside are dropped, the others clipped to the crop. ``no_crop`` is one more
    choice when ``allow_no_crop``. ppdet's ``is_mask_crop`` (polygon cropping) is not supported.

    Difference from ppdet: where a candidate is as tall (wide) as the image, ppdet's
    ``randint(0, 0)`` raises; here the offset is 0.
    """

    def __init__(self, aspect_ratio=(0.5, 2.0), thresholds=(0.0, 0.1, 0.3, 0.5, 0.7, 0.9),
                 scaling=(0.3, 1.0), num_attempts=50, allow_no_crop=True, cover_all_box=False):
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
                    x1, y1, x2, y2 = crop
                    sample["image"] = sample["image"][y1:y2, x1:x2]
                    sample = _take_instances(sample, keep)
                    sample["boxes"] = cropped[keep]
                    return sample
        return sample

    def __repr__(self):
        return (f"{type(self).__name__}(aspect_ratio={self.aspect_ratio}, thresholds="
                f"{self.thresholds}, scaling={self.scaling}, num_attempts={self.num_attempts}, "
                f"allow_no_crop={self.allow_no_crop}, cover_all_box={self.cover_all_box})")


class RandomFlip:
    """ppdet ``RandomFlip``: horizontal flip with probability ``prob``; ``x -> width - x``."""

    def __init__(self, prob=0.5):
        self.prob = float(prob)

    def __call__(self, sample, rng):
        if rng.uniform(0, 1) < self.prob:
            image = sample["image"]
            width = image.shape[1]
            sample["image"] = cv2.flip(image, 1)
            boxes = sample["boxes"]
            sample["boxes"] = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0],
                                        boxes[:, 3]], axis=1).astype(np.float32, copy=False)
        return sample

    def __repr__(self):
        return f"{type(self).__name__}(prob={self.prob})"


def draw_distortion(setting, rng):
    """ppdet's RandomDistort draw for one ``(low, high, prob)`` setting: ``None`` (skipped, with
    probability ``prob``, as ppdet compares ``uniform < prob``) or ``uniform(low, high)``."""
    low, high, prob = setting
    if rng.uniform(0.0, 1.0) < prob:
        return None
    return rng.uniform(low, high)


class RandomDistort:
    """ppdet ``RandomDistort`` as one affine colour transform ``rgb' = M @ rgb + v``.

    Each of brightness (``+ delta``), contrast (``* delta``), saturation (blend with the luma
    ``0.299 R + 0.587 G + 0.114 B``) and hue (rotation by ``delta * pi`` radians in YIQ space, as
    ppdet does with its ``[-18, 18]`` range) is applied with probability ``1 - prob`` where a
    setting is ``[low, high, prob]``. ``random_apply`` applies ``count`` of them in random order;
    otherwise the fixed SSD order (with ``random_channel`` swaps). The image must be RGB.

    Defaults are ppdet's. ``defer=False`` applies the transform now (uint8, rounded and
    saturated); ``defer=True`` leaves the pixels and composes it into
    ``sample["color_transform"]`` (3, 4) float32 ``[M | v]`` for ``apply_color_transform``.
    """

    def __init__(self, hue=(-18, 18, 0.5), saturation=(0.5, 1.5, 0.5), contrast=(0.5, 1.5, 0.5),
                 brightness=(0.5, 1.5, 0.5), random_apply=True, count=4, random_channel=False,
                 defer=False):
        self.hue, self.saturation = tuple(hue), tuple(saturation)
        self.contrast, self.brightness = tuple(contrast), tuple(brightness)
        self.random_apply = random_apply
        self.count = int(count)
        self.random_channel = random_channel
        self.defer = defer

    def _brightness(self, rng):
        delta = draw_distortion(self.brightness, rng)
        return None if delta is None else (np.eye(3), np.full(3, delta))

    def _contrast(self, rng):
        delta = draw_distortion(self.contrast, rng)
        return None if delta is None else (np.eye(3) * delta, np.zeros(3))

    def _saturation(self, rng):
        delta = draw_distortion(self.saturation, rng)
        if delta is None:
            return None
        return np.eye(3) * delta + (1.0 - delta) * np.tile(_LUMA, (3, 1)), np.zeros(3)

    def _hue(self, rng):
        delta = draw_distortion(self.hue, rng)
        if delta is None:
            return None
        cos, sin = np.cos(delta * np.pi), np.sin(delta * np.pi)
        rotation = np.array([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]])
        return _YIQ_TO_RGB @ rotation @ _RGB_TO_YIQ, np.zeros(3)

    def draw(self, rng):
        """Draw one distortion: ``(M (3, 3), v (3,))`` float64, or None when nothing applies."""
        steps = []
        if self.random_apply:
            ops = (self._brightness, self._contrast, self._saturation, self._hue)
            for i in rng.permutation(len(ops))[:self.count]:
                steps.append(ops[i](rng))
        else:
            steps.append(self._brightness(rng))
            mode = rng.randint(0, 2)
            if mode:
                steps.append(self._contrast(rng))
            steps += [self._saturation(rng), self._hue(rng)]
            if not mode:
                steps.append(self._contrast(rng))
            if self.random_channel and rng.randint(0, 2):
                steps.append((np.eye(3)[rng.permutation(3)], np.zeros(3)))
        steps = [s for s in steps if s is not None]
        if not steps:
            return None
        matrix, offset = np.eye(3), np.zeros(3)
        for step_matrix, step_offset in steps:
            matrix, offset = step_matrix @ matrix, step_matrix @ offset + step_offset
        return matrix, offset

    def __call__(self, sample, rng):
        drawn = self.draw(rng)
        if self.defer:
            matrix, offset = drawn if drawn is not None else (np.eye(3), np.zeros(3))
            if "color_transform" in sample:
                prev = sample["color_transform"].astype(np.float64)
                matrix, offset = matrix @ prev[:, :3], matrix @ prev[:, 3] + offset
            sample["color_transform"] = np.concatenate([matrix, offset[:, None]], 1).astype(
                np.float32)
        elif drawn is not None:
            affine = np.concatenate([drawn[0], drawn[1][:, None]], 1)
            sample["image"] = cv2.transform(np.ascontiguousarray(sample["image"]), affine)
        return sample

    def __repr__(self):
        return (f"{type(self).__name__}(hue={self.hue}, saturation={self.saturation}, "
                f"contrast={self.contrast}, brightness={self.brightness}, random_apply="
                f"{self.random_apply}, count={self.count}, random_channel={self.random_channel}, "
                f"defer={self.defer})")


class BatchRandomResize:
    """ppdet ``BatchRandomResize``: one size (and interpolation) per batch, boxes scaled.

    ``draw(rng)`` makes ppdet's two draws (``choice`` of a size index, then ``choice`` of
    ``INTERPOLATIONS``); ``__call__(samples, size, interp)`` resizes every sample with cv2's
    ``fx``/``fy`` form as ppdet's ``Resize`` and scales boxes, clipped to the resized image.
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
        if self.keep_ratio:
            scale_x = scale_y = min(min(th, tw) / min(h, w), max(th, tw) / max(h, w))
            out_h, out_w = scale_y * h, scale_x * w
        else:
            scale_y, scale_x = th / h, tw / w
            out_h, out_w = th, tw
        resized = cv2.resize(image, None, None, fx=scale_x, fy=scale_y, interpolation=interp)
        if self.keep_ratio:
            canvas = np.zeros((th, tw, 3), dtype=resized.dtype)
            rh, rw = min(resized.shape[0], th), min(resized.shape[1], tw)
            canvas[:rh, :rw] = resized[:rh, :rw]
            resized = canvas
        sample["image"] = resized
        boxes = sample["boxes"].astype(np.float32, copy=True)
        boxes[:, 0::2] = np.clip(boxes[:, 0::2] * scale_x, 0, out_w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2] * scale_y, 0, out_h)
        sample["boxes"] = boxes
        return sample

    def __call__(self, samples, size, interp):
        return [self.resize(s, size, interp) for s in samples]

    def __repr__(self):
        return (f"{type(self).__name__}(target_sizes={self.target_sizes}, random_size="
                f"{self.random_size}, random_interp={self.random_interp}, keep_ratio="
                f"{self.keep_ratio}, interp={self.interp})")


def pad_gt(samples):
    """ppdet ``PadGT``: pad every sample's GT to the batch's largest count ``n``.

    Returns numpy ``gt_bboxes`` (B, n, 4) float32, ``gt_labels`` (B, n, 1) int64 and
    ``pad_gt_mask`` (B, n, 1) float32 (1 for a real box, 0 for padding); ``n`` may be 0.
    """
    num = max((len(s["boxes"]) for s in samples), default=0)
    gt_bboxes = np.zeros((len(samples), num, 4), dtype=np.float32)
    gt_labels = np.zeros((len(samples), num, 1), dtype=np.int64)
    pad_gt_mask = np.zeros((len(samples), num, 1), dtype=np.float32)
    for i, s in enumerate(samples):
        k = len(s["boxes"])
        gt_bboxes[i, :k] = s["boxes"]
        gt_labels[i, :k, 0] = s["labels"]
        pad_gt_mask[i, :k] = 1.0
    return gt_bboxes, gt_labels, pad_gt_mask


def apply_color_transform(images, color_transforms):
    """Apply deferred ``RandomDistort`` transforms on the device, before normalisation.

    ``images``: float (B, 3, H, W) RGB in 0..255 (not clipped afterwards, as in ppdet);
    ``color_transforms``: (B, 3, 4) ``[M | v]``. Returns ``M @ rgb + v`` per pixel, (B, 3, H, W).
    """
    ct = color_transforms.to(device=images.device, dtype=images.dtype)
    return torch.einsum("bij,bjhw->bihw", ct[:, :, :3], images) + ct[:, :, 3, None, None]


def picodet_sample_transforms(defer_distort=False):
    """PicoDet's TrainReader sample transforms: RandomCrop, RandomFlip(0.5), RandomDistort."""
    return [RandomCrop(), RandomFlip(prob=0.5), RandomDistort(defer=defer_distort)]

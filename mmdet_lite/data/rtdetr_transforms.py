"""RT-DETR's TrainReader (``rtdetr/_base_/rtdetr_reader.yml``, ppdet develop) on uint8 images.

Sample transforms (after ``Decode``, BGR -> RGB): ``RandomDistort(prob=0.8)`` (ppdet develop's
PIL version: ``PILRandomDistort``), ``RandomExpand(fill_value=ImageNet mean)``,
``RandomCrop(prob=0.8)`` (``RandomCropWithProb``: the PicoDet ``RandomCrop`` plus develop's
``prob``), ``RandomFlip``. Batch transforms: ``BatchRandomResize`` (480..800, random
interpolation), ``NormalizeBox`` + ``BboxXYXY2XYWH`` (``DETRTrainCollate``); ``NormalizeImage``
(mean 0, std 1: ``x / 255``) happens in the model. Samples and the ``t(sample, rng)`` call
convention are those of ``mmdet_lite.data.train_transforms``; random draws come from the
per-sample ``RandomState`` in the order and with the calls of ppdet's ``np.random`` draws, except
the ``prob`` tests of develop's RandomDistort / RandomCrop, which ppdet draws from Python's
``random`` and these draw from the same ``RandomState`` (not at all when ``prob`` is 1).

Differences from ppdet (which turns the image into float32 at ``RandomDistort``): images stay
uint8, so ``RandomExpand``'s fill is rounded to integers (124, 116, 104) and the batch resize rounds
its output to integers (at most 0.5 / 255 after normalisation).
"""
import cv2
import numpy as np
import torch
from PIL import Image, ImageEnhance

from mmdet_lite.data.train_loader import build_train_loader
from mmdet_lite.data.train_transforms import (BatchRandomResize, RandomCrop, RandomFlip,
                                              draw_distortion, pad_gt)
from mmdet_lite.utils.errors import UserError

__all__ = ["PILRandomDistort", "RandomExpand", "RandomCropWithProb", "normalize_boxes_cxcywh",
           "DETRTrainCollate", "rtdetr_sample_transforms", "build_detr_train_loader",
           "RTDETR_TRAIN_SIZES"]

RTDETR_TRAIN_SIZES = [480, 512, 544, 576, 608, 640, 640, 640, 672, 704, 736, 768, 800]
"""``BatchRandomResize.target_size`` of RT-DETR's reader (640 three times: drawn more often)."""


class PILRandomDistort:
    """ppdet develop's ``RandomDistort``: PIL colour enhancements on an RGB uint8 image.

    With probability ``prob`` the sample is distorted: each of brightness
    (``ImageEnhance.Brightness``), contrast (``ImageEnhance.Contrast``), saturation
    (``ImageEnhance.Color``) and hue (``delta`` added to PIL's 8-bit HSV hue, wrapping as ppdet's
    uint8 assignment wraps) applies with probability ``1 - p`` for a setting ``[low, high, p]``,
    ``delta ~ U(low, high)``. ``random_apply``: ``count`` of them in random order; otherwise
    ppdet's fixed order (contrast second or last, optional channel swap).
    """

    def __init__(self, hue=(-18, 18, 0.5), saturation=(0.5, 1.5, 0.5), contrast=(0.5, 1.5, 0.5),
                 brightness=(0.5, 1.5, 0.5), random_apply=True, count=4, random_channel=False,
                 prob=1.0):
        self.hue, self.saturation = tuple(hue), tuple(saturation)
        self.contrast, self.brightness = tuple(contrast), tuple(brightness)
        self.random_apply, self.count = random_apply, int(count)
        self.random_channel, self.prob = random_channel, float(prob)

    def _enhance(self, enhancer, setting):
        def apply(img, rng):
            delta = draw_distortion(setting, rng)
            return img if delta is None else enhancer(img).enhance(delta)
        return apply

    def _hue(self, img, rng):
        delta = draw_distortion(self.hue, rng)
        if delta is None:
            return img
        hsv = np.array(img.convert("HSV"))
        hsv[:, :, 0] = np.mod(np.trunc(hsv[:, :, 0] + delta), 256).astype(np.uint8)
        return Image.frombytes("HSV", img.size, hsv.tobytes()).convert("RGB")

    def __call__(self, sample, rng):
        if self.prob < 1.0 and rng.random_sample() > self.prob:
            return sample
        img = Image.fromarray(np.ascontiguousarray(sample["image"]))
        brightness = self._enhance(ImageEnhance.Brightness, self.brightness)
        contrast = self._enhance(ImageEnhance.Contrast, self.contrast)
        saturation = self._enhance(ImageEnhance.Color, self.saturation)
        if self.random_apply:
            ops = (brightness, contrast, saturation, self._hue)
            for i in rng.permutation(len(ops))[:self.count]:
                img = ops[i](img, rng)
            sample["image"] = np.asarray(img).copy()
            return sample
        img = brightness(img, rng)
        mode = rng.randint(0, 2)
        if mode:
            img = contrast(img, rng)
        img = self._hue(saturation(img, rng), rng)
        if not mode:
            img = contrast(img, rng)
        image = np.asarray(img).copy()
        if self.random_channel and rng.randint(0, 2):
            image = np.ascontiguousarray(image[..., rng.permutation(3)])
        sample["image"] = image
        return sample

    def __repr__(self):
        return (f"{type(self).__name__}(hue={self.hue}, saturation={self.saturation}, contrast="
                f"{self.contrast}, brightness={self.brightness}, random_apply={self.random_apply}, "
                f"count={self.count}, random_channel={self.random_channel}, prob={self.prob})")


class RandomExpand:
    """ppdet ``RandomExpand``: with probability ``1 - prob``, place the image at a random offset
    on a canvas ``U(1, ratio)`` times larger (both sides, truncated to int) filled with
    ``fill_value`` (RGB, rounded to uint8); boxes shift by the offset."""

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
        canvas[y:y + height, x:x + width] = image
        sample["image"] = canvas
        sample["boxes"] = sample["boxes"] + np.array([x, y, x, y], dtype=np.float32)
        return sample

    def __repr__(self):
        return (f"{type(self).__name__}(ratio={self.ratio}, prob={self.prob}, "
                f"fill_value={self.fill_value})")


class RandomCropWithProb(RandomCrop):
    """ppdet develop's ``RandomCrop``: the SSD-style IoU crop of ``RandomCrop`` (PicoDet's, same
    arguments), tried with probability ``prob`` (develop's extra argument; ``ioumode="iou"``)."""

    def __init__(self, prob=1.0, **kwargs):
        super().__init__(**kwargs)
        self.prob = float(prob)

    def __call__(self, sample, rng):
        if self.prob < 1.0 and rng.random_sample() > self.prob:
            return sample
        return super().__call__(sample, rng)

    def __repr__(self):
        return super().__repr__()[:-1] + f", prob={self.prob})"


def normalize_boxes_cxcywh(boxes, height, width):
    """ppdet ``NormalizeBox`` then ``BboxXYXY2XYWH`` in float32: x1y1x2y2 pixels (n, 4) of an
    image ``height x width`` -> normalised cx, cy, w, h (n, 4)."""
    boxes = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    boxes[:, 0::2] /= np.float32(width)
    boxes[:, 1::2] /= np.float32(height)
    boxes[:, 2:4] = boxes[:, 2:4] - boxes[:, :2]
    boxes[:, :2] = boxes[:, :2] + boxes[:, 2:4] / np.float32(2.0)
    return boxes


class DETRTrainCollate:
    """Batch transforms of RT-DETR's reader and stacking into tensors.

    ``BatchRandomResize`` (size and interpolation drawn from ``RandomState(batch_seed)`` of the
    first sample), then boxes normalised to cxcywh of the resized image, then padded. Returns a
    dict: ``images`` uint8 (B, 3, S_h, S_w) RGB; ``gt_bboxes`` float32 (B, n, 4) normalised
    cx, cy, w, h; ``gt_labels`` int64 (B, n, 1); ``pad_gt_mask`` float32 (B, n, 1) (1: real box);
    ``image_ids`` list[int]. ``n`` is the batch's largest box count.
    """

    def __init__(self, batch_resize):
        self.batch_resize = batch_resize

    def __call__(self, samples):
        size, interp = self.batch_resize.draw(np.random.RandomState(samples[0]["batch_seed"]))
        samples = self.batch_resize(samples, size, interp)
        for s in samples:
            s["boxes"] = normalize_boxes_cxcywh(s["boxes"], *s["image"].shape[:2])
        gt_bboxes, gt_labels, pad_gt_mask = pad_gt(samples)
        images = np.stack([s["image"] for s in samples]).transpose(0, 3, 1, 2)
        return dict(images=torch.from_numpy(np.ascontiguousarray(images)),
                    gt_bboxes=torch.from_numpy(gt_bboxes), gt_labels=torch.from_numpy(gt_labels),
                    pad_gt_mask=torch.from_numpy(pad_gt_mask),
                    image_ids=[int(s["image_id"]) for s in samples])


_TRANSFORMS = {"RandomDistort": PILRandomDistort, "RandomExpand": RandomExpand,
               "RandomCrop": RandomCropWithProb, "RandomFlip": RandomFlip}


def rtdetr_sample_transforms(config, owner="train_transforms"):
    """Sample transforms from ``{ppdet name: kwargs}`` in order (RT-DETR's YAML names:
    RandomDistort, RandomExpand, RandomCrop, RandomFlip); ``UserError`` for others or bad kwargs."""
    unknown = sorted(set(config or {}) - set(_TRANSFORMS))
    if unknown:
        raise UserError(f"{owner}: {unknown} not supported; RT-DETR's reader knows "
                        f"{', '.join(_TRANSFORMS)}")
    transforms = []
    for name, kwargs in (config or {}).items():
        try:
            transforms.append(_TRANSFORMS[name](**(kwargs or {})))
        except (TypeError, ValueError) as err:
            raise UserError(f"{owner}.{name}: {err}") from None
    return transforms


def build_detr_train_loader(dataset, batch_size, num_workers, seed, sample_transforms, rank=0,
                            world_size=1, target_sizes=tuple(RTDETR_TRAIN_SIZES),
                            random_interp=True, pin_memory=None, persistent_workers=False):
    """RT-DETR's TrainReader as a ``TrainLoader``: ``build_train_loader`` (seeding, sharding,
    resuming) with ``DETRTrainCollate`` batches (square sizes, nearest-neighbour resize unless
    ``random_interp``).

    Like ppdet's training ``COCODataSet``, crowd boxes are dropped and images left without boxes
    are skipped; ``UserError`` when no image is usable or the set is smaller than one batch.
    """
    collate = DETRTrainCollate(BatchRandomResize(list(target_sizes), random_size=True,
                                                 random_interp=random_interp, keep_ratio=False,
                                                 interp=cv2.INTER_NEAREST))
    return build_train_loader(dataset, batch_size, num_workers, seed, rank=rank,
                              world_size=world_size, drop_last=True,
                              sample_transforms=list(sample_transforms or ()), drop_crowd=True,
                              allow_empty=False, pin_memory=pin_memory,
                              persistent_workers=persistent_workers, collate_fn=collate)

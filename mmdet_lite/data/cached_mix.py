"""mmdet 3.3.0's ``CachedMosaic`` and ``CachedMixUp`` (RTMDet / YOLOv6+ style) on our samples.

Both keep a cache of the samples they were called with (the most recent ``max_cached_images``;
when full, one is dropped: a random one with ``random_pop``, else the oldest) and mix the current
sample with cached ones. Like mmdet's, the cache lives in the transform, so each data-loader worker
has its own: for a given seed and worker count the batches are reproducible, but unlike the other
transforms they depend on the number of workers, and a resumed epoch starts with empty caches.

Draws come from ``rng`` (numpy: mmdet's transforms module imports ``random`` from numpy, so its
``random.randint(0, n - 1)`` never picks the last entry) in mmdet's order, so with the same cache
history one seed gives mmdet's images and boxes. Images here are RGB (mmdet's BGR:
the arithmetic is per channel and identical). Instances (``mmdet_lite.data.instances``) follow the
geometry, masks included (nearest-neighbour).
"""
import cv2
import numpy as np

from mmdet_lite.data import instances
from mmdet_lite.data.mosaic import inside_image, tile_four

__all__ = ["CachedMosaic", "CachedMixUp"]


def _copy(sample):
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in sample.items()}


class _SampleCache:
    """The cache both transforms keep: ``push`` a copy, dropping one over ``max_cached_images``."""

    def __init__(self, max_cached_images, random_pop):
        self.max_cached_images = int(max_cached_images)
        self.random_pop = bool(random_pop)
        self.cache = []

    def push(self, sample, rng):
        self.cache.append(_copy(sample))
        if len(self.cache) > self.max_cached_images:
            index = rng.randint(0, len(self.cache) - 1) if self.random_pop else 0
            self.cache.pop(index)

    def __getstate__(self):  # a worker starts with an empty cache, as mmdet's
        return dict(vars(self), cache=[])


class CachedMosaic(_SampleCache):
    """mmdet ``CachedMosaic``: the sample (top left) and three cached ones on a ``2h x 2w`` canvas.

    ``img_scale`` is mmdet's ``(w, h)``. Nothing happens until the cache holds more than 4 samples,
    or when ``uniform(0, 1) > prob``. Otherwise three cache indices and the centre ``(x, y) =
    (int(uniform(*center_ratio_range) * w), int(uniform(...) * h))`` are drawn; the tiles are
    letterboxed, placed and their boxes clipped to the canvas (``bbox_clip_border``), boxes not
    overlapping it dropped. ``__call__(sample, rng) -> sample`` with image (2h, 2w, 3) uint8.
    """

    def __init__(self, img_scale=(640, 640), center_ratio_range=(0.5, 1.5), bbox_clip_border=True,
                 pad_val=114.0, prob=1.0, max_cached_images=40, random_pop=True):
        if max_cached_images < 4:
            raise ValueError(f"CachedMosaic: max_cached_images must be >= 4, got "
                             f"{max_cached_images}")
        if float(pad_val) != 114.0 or not bbox_clip_border:
            raise ValueError("CachedMosaic: only pad_val 114 and bbox_clip_border True "
                             "(mmdet's RTMDet settings) are supported")
        super().__init__(max_cached_images, random_pop)
        self.img_scale = tuple(int(s) for s in img_scale)
        self.center_ratio_range = tuple(center_ratio_range)
        self.prob = float(prob)

    def __call__(self, sample, rng):
        self.push(sample, rng)
        if len(self.cache) <= 4 or rng.uniform(0, 1) > self.prob:
            return sample
        others = [self.cache[rng.randint(0, len(self.cache) - 1)] for _ in range(3)]
        width, height = self.img_scale
        center_x = int(rng.uniform(*self.center_ratio_range) * width)
        center_y = int(rng.uniform(*self.center_ratio_range) * height)
        samples = [sample] + others
        with_masks = all("masks" in s for s in samples)
        canvas, tiled, mask_tiles = tile_four(samples, center_x, center_y, (height, width),
                                              with_masks)
        if with_masks:
            tiled["masks"] = np.concatenate([
                instances.warp_affine_masks(masks, [[1, 0, dx], [0, 1, dy]], canvas.shape[1::-1])
                for masks, (dx, dy) in mask_tiles])
        instances.select(tiled, inside_image(tiled["boxes"], 2 * width, 2 * height))
        out = {k: v for k, v in sample.items() if k not in instances.INSTANCE_FIELDS}
        out.update(tiled, image=canvas)
        return out

    def __repr__(self):
        return (f"{type(self).__name__}(img_scale={self.img_scale}, center_ratio_range="
                f"{self.center_ratio_range}, prob={self.prob}, max_cached_images="
                f"{self.max_cached_images}, random_pop={self.random_pop})")


class CachedMixUp(_SampleCache):
    """mmdet ``CachedMixUp``: blend a cached sample (with boxes) into the current one, 50/50.

    Needs more than one cached sample and ``uniform(0, 1) <= prob``; up to ``max_iters`` draws
    look for a cached sample with boxes. It is letterboxed into ``img_scale`` ``(w, h)`` (pad
    ``pad_val``), scaled by ``uniform(*ratio_range)`` (in float64, truncated to uint8, as mmdet),
    flipped when ``uniform(0, 1) > flip_ratio``, randomly cropped to the current image's size;
    its boxes follow (clipped), and every box not overlapping the image is dropped.
    """

    def __init__(self, img_scale=(640, 640), ratio_range=(0.5, 1.5), flip_ratio=0.5,
                 pad_val=114.0, max_iters=15, bbox_clip_border=True, max_cached_images=20,
                 random_pop=True, prob=1.0):
        if max_cached_images < 2:
            raise ValueError(f"CachedMixUp: max_cached_images must be >= 2, got "
                             f"{max_cached_images}")
        if not bbox_clip_border:
            raise ValueError("CachedMixUp: only bbox_clip_border True (mmdet's RTMDet) is "
                             "supported")
        super().__init__(max_cached_images, random_pop)
        self.img_scale = tuple(int(s) for s in img_scale)
        self.ratio_range = tuple(ratio_range)
        self.flip_ratio = float(flip_ratio)
        pad = np.asarray(pad_val, dtype=np.float64).reshape(-1)
        self.pad_val = tuple(float(v) for v in np.broadcast_to(pad, (3,)))
        self.max_iters = int(max_iters)
        self.prob = float(prob)

    def _retrieve(self, rng):
        for _ in range(self.max_iters):
            index = rng.randint(0, len(self.cache) - 1)
            if len(self.cache[index]["boxes"]):
                break
        return self.cache[index]

    def _paste(self, image, jitter):
        """The letterboxed, jittered image (float64, as mmdet's) and its total scale."""
        width, height = self.img_scale
        out = np.ones((height, width, 3)) * np.array(self.pad_val)
        ratio = min(height / image.shape[0], width / image.shape[1])
        resized = cv2.resize(image, (int(image.shape[1] * ratio), int(image.shape[0] * ratio)),
                             interpolation=cv2.INTER_LINEAR)
        out[:resized.shape[0], :resized.shape[1]] = resized
        out = cv2.resize(out, (int(out.shape[1] * jitter), int(out.shape[0] * jitter)),
                         interpolation=cv2.INTER_LINEAR)
        return out, ratio * jitter

    def __call__(self, sample, rng):
        self.push(sample, rng)
        if len(self.cache) <= 1 or rng.uniform(0, 1) > self.prob:
            return sample
        retrieved = self._retrieve(rng)
        if len(retrieved["boxes"]) == 0:
            return sample
        jitter = rng.uniform(*self.ratio_range)
        flip = rng.uniform(0, 1) > self.flip_ratio
        paste, scale = self._paste(retrieved["image"], jitter)
        origin_h, origin_w = paste.shape[:2]
        mixed = _copy({k: retrieved[k] for k in instances.INSTANCE_FIELDS if k in retrieved})
        mixed["image"] = paste
        mixed["boxes"] = instances.scale_boxes(mixed["boxes"], np.float32(scale),
                                               np.float32(scale), origin_w, origin_h)
        if "masks" in mixed:
            mixed["masks"] = instances.resize_masks(mixed["masks"], scale, scale,
                                                    (origin_h, origin_w))
        if flip:
            mixed = instances.flip_horizontal(mixed)
        target_h, target_w = sample["image"].shape[:2]
        padded = (np.ones((max(origin_h, target_h), max(origin_w, target_w), 3))
                  * np.array(self.pad_val)).astype(np.uint8)
        padded[:origin_h, :origin_w] = mixed.pop("image")
        y_off = rng.randint(0, padded.shape[0] - target_h) if padded.shape[0] > target_h else 0
        x_off = rng.randint(0, padded.shape[1] - target_w) if padded.shape[1] > target_w else 0
        crop = padded[y_off:y_off + target_h, x_off:x_off + target_w]

        boxes = mixed["boxes"] - np.array([x_off, y_off] * 2, np.float32)
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, target_w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, target_h)
        mixed["boxes"] = boxes
        if "masks" in mixed:
            window = np.zeros((len(mixed["masks"]), target_h, target_w), np.uint8)
            cut = mixed["masks"][:, y_off:y_off + target_h, x_off:x_off + target_w]
            window[:, :cut.shape[1], :cut.shape[2]] = cut
            mixed["masks"] = window
        image = (0.5 * sample["image"].astype(np.float32) + 0.5 * crop.astype(np.float32))
        parts = [{k: sample[k] for k in instances.INSTANCE_FIELDS if k in sample}, mixed]
        merged = instances.concatenate(parts, (target_h, target_w))
        instances.select(merged, inside_image(merged["boxes"], target_w, target_h))
        out = {k: v for k, v in sample.items() if k not in instances.INSTANCE_FIELDS}
        out.update(merged, image=image.astype(np.uint8))
        return out

    def __repr__(self):
        return (f"{type(self).__name__}(img_scale={self.img_scale}, ratio_range="
                f"{self.ratio_range}, flip_ratio={self.flip_ratio}, pad_val={self.pad_val}, "
                f"max_iters={self.max_iters}, max_cached_images={self.max_cached_images}, "
                f"random_pop={self.random_pop}, prob={self.prob})")

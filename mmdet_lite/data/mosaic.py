"""Mosaic with MixUp: ppdet 2.6.0's ``Mosaic`` (YOLOX's MosaicDetection) on uint8 samples.

``Mosaic`` takes ppdet's five records (the dataset's own plus four drawn with ``randint``, see
``TrainDataset``'s ``mosaic_epoch``): four are tiled around a random centre of a 2x canvas, the
canvas is warped by a random affine map to ``input_dim`` and the fifth image is blended in
("MixUp as copy-paste"). ppdet draws these numbers from Python's ``random``; here they come from
``rng.py`` of a ``SampleRandom`` in ppdet's order, so one seed gives ppdet's images and boxes bit
for bit when ppdet runs after ``np.random.seed(seed); random.seed(seed)``. The pixel arithmetic is
ppdet's, in integers where ppdet's float result is an integer (the 50/50 blend).

Every instance field of the samples (``mmdet_lite.data.instances``) is carried: boxes as ppdet
computes them, crowd flags, and masks, which go through the same tiling, warp and MixUp geometry
(nearest-neighbour) as the pixels.
"""
import math

import cv2
import numpy as np

from mmdet_lite.data import instances

__all__ = ["Mosaic", "tile_four", "inside_image"]

_FILL = 114  # ppdet's (YOLOX's) grey for the canvas and the warp's border


def _mosaic_coords(k, xc, yc, w, h, input_h, input_w):
    """Where tile ``k`` (0 TL, 1 TR, 2 BL, 3 BR) of size (h, w) goes on the 2x canvas.

    Returns ``(x1, y1, x2, y2)`` on the canvas and the matching ``(x1, y1, x2, y2)`` in the tile.
    """
    if k == 0:
        big = max(xc - w, 0), max(yc - h, 0), xc, yc
        return big, (w - (big[2] - big[0]), h - (big[3] - big[1]), w, h)
    if k == 1:
        big = xc, max(yc - h, 0), min(xc + w, 2 * input_w), yc
        return big, (0, h - (big[3] - big[1]), min(w, big[2] - big[0]), h)
    if k == 2:
        big = max(xc - w, 0), yc, xc, min(2 * input_h, yc + h)
        return big, (w - (big[2] - big[0]), 0, w, min(big[3] - big[1], h))
    big = xc, yc, min(xc + w, 2 * input_w), min(2 * input_h, yc + h)
    return big, (0, 0, min(w, big[2] - big[0]), min(big[3] - big[1], h))


def _warp_affine(image, matrix, dsize, border):
    """``cv2.warpAffine(image, matrix, dsize)`` (bilinear, constant ``border``) as OpenCV 4.5 does.

    OpenCV 4.11/5.x reimplemented warpAffine with other rounding; ppdet's OpenCV (4.5.5) maps every
    output pixel to source coordinates in fixed point (1/32 px, from the inverted matrix) and
    interpolates with its 15-bit weight table. Those maps are built here and handed to
    ``cv2.remap``, which still uses that table, so the result is 4.5.5's on any OpenCV version.
    """
    (m0, m1, m2), (m3, m4, m5) = matrix.tolist()
    det = m0 * m4 - m1 * m3  # OpenCV's inversion, in its operation order
    det = 1.0 / det if det != 0 else 0.0
    m0, m1, m3, m4 = m4 * det, m1 * -det, m3 * -det, m0 * det
    m2, m5 = -m0 * m2 - m1 * m5, -m3 * m2 - m4 * m5
    xs, ys = np.arange(dsize[0], dtype=np.float64), np.arange(dsize[1], dtype=np.float64)
    # 10 fractional bits, rounded to 5 (+16 = half of 1/32 px)
    x = np.rint((m1 * ys + m2) * 1024).astype(np.int32)[:, None] + 16
    x = (x + np.rint(m0 * xs * 1024).astype(np.int32)) >> 5
    y = np.rint((m4 * ys + m5) * 1024).astype(np.int32)[:, None] + 16
    y = (y + np.rint(m3 * xs * 1024).astype(np.int32)) >> 5
    fractions = ((y & 31) << 5 | (x & 31)).astype(np.uint16)
    coords = np.empty(x.shape + (2,), np.int16)
    coords[..., 0], coords[..., 1] = np.clip(x >> 5, -32768, 32767), np.clip(y >> 5, -32768, 32767)
    return cv2.remap(image, coords, fractions, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def inside_image(boxes, width, height):
    """ppdet's ``remove_outside_box`` test (mmdet's ``is_inside``): boxes (n, 4) overlapping
    ``[0, width] x [0, height]``."""
    return ((boxes[:, 0] < width) & (boxes[:, 2] > 0) & (boxes[:, 1] < height)
            & (boxes[:, 3] > 0))


def tile_four(samples, xc, yc, input_dim, with_masks, remove_outside_box=False):
    """The four-tile step of YOLOX's / mmdet's mosaic on a ``2h x 2w`` canvas (``input_dim``
    ``(h, w)``) around the centre ``(xc, yc)``: each sample letterboxed to ``input_dim`` (cv2
    bilinear), tile ``k`` placed by ``_mosaic_coords``, boxes scaled and shifted in float32.

    Boxes are clipped to the canvas (``remove_outside_box``: those not overlapping it are dropped
    instead, unclipped). Returns the canvas (uint8, filled with 114), the instances on it and, per
    tile, ``(masks cut to what the canvas shows, (dx, dy) shift from tile to canvas)``.
    """
    input_h, input_w = input_dim
    canvas = np.full((2 * input_h, 2 * input_w, 3), _FILL, dtype=np.uint8)
    parts, mask_tiles = [], []
    for k, sample in enumerate(samples):
        image = sample["image"]
        h0, w0 = image.shape[:2]
        ratio = min(input_h / h0, input_w / w0)
        image = cv2.resize(image, (int(w0 * ratio), int(h0 * ratio)),
                           interpolation=cv2.INTER_LINEAR)
        h, w = image.shape[:2]
        (x1, y1, x2, y2), (sx1, sy1, sx2, sy2) = _mosaic_coords(k, xc, yc, w, h, input_h,
                                                                input_w)
        canvas[y1:y2, x1:x2] = image[sy1:sy2, sx1:sx2]
        shift = np.array([x1 - sx1, y1 - sy1] * 2, dtype=np.float32)
        boxes = sample["boxes"].astype(np.float32) * np.float32(ratio) + shift
        parts.append(_instances(sample, boxes))
        if with_masks:
            masks = instances.resize_masks_to(sample["masks"], w, h)
            shown = np.zeros_like(masks)
            shown[:, sy1:sy2, sx1:sx2] = masks[:, sy1:sy2, sx1:sx2]
            mask_tiles.append((shown, (x1 - sx1, y1 - sy1)))
    tiled = instances.concatenate(parts, canvas.shape[:2])
    boxes = tiled["boxes"]
    if remove_outside_box:
        keep = inside_image(boxes, 2 * input_w, 2 * input_h)
        instances.select(tiled, keep)
        tile_of = np.repeat(np.arange(len(parts)), [len(p["boxes"]) for p in parts])
        mask_tiles = [(m[keep[tile_of == t]], shift) for t, (m, shift) in enumerate(mask_tiles)]
        return canvas, tiled, mask_tiles
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, 2 * input_w)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, 2 * input_h)
    return canvas, tiled, mask_tiles


def _instances(sample, boxes):
    """The non-mask instance fields of ``sample`` with ``boxes`` in place of its own."""
    fields = {k: sample[k] for k in instances.INSTANCE_FIELDS if k in sample and k != "masks"}
    fields["labels"] = np.asarray(fields["labels"], dtype=np.int64).reshape(-1)
    fields["boxes"] = boxes
    return fields


class Mosaic:
    """ppdet ``Mosaic`` (YOLOX's MosaicDetection) with optional MixUp, on five samples.

    ``__call__(samples, rng)`` with a list of 5 samples: with probability ``prob`` (one
    ``rng.uniform`` draw) returns one sample whose ``image`` is (input_dim[1], input_dim[0], 3)
    uint8 and whose instances (``boxes`` (m, 4) float32, ``labels`` (m,) int64, ``is_crowd``,
    ``masks`` (m, H, W) where all samples have them) are those of the four tiles (warped, clipped)
    and, with MixUp, of the fifth image; otherwise returns ``samples[0]``. A single sample (a
    dict, as after ``mosaic_epoch``) is returned unchanged without any draw. ``rng`` must be a
    ``SampleRandom``: the geometry is drawn from ``rng.py``.

    As ppdet, boxes are never dropped (unless ``remove_outside_box``): boxes warped or cropped out
    of the image stay as zero-width/height boxes on its border (with empty masks). ``input_dim``
    is ``(h, w)`` for the canvas but the warp's output size is ``(w, h) = input_dim`` (ppdet's
    quirk; the same for a square ``input_dim``).
    """

    num_samples = 5

    def __init__(self, prob=1.0, input_dim=(640, 640), degrees=(-10, 10), translate=(-0.1, 0.1),
                 scale=(0.1, 2.0), shear=(-2, 2), enable_mixup=True, mixup_prob=1.0,
                 mixup_scale=(0.5, 1.5), remove_outside_box=False):
        self.prob = float(prob)
        dims = [input_dim, input_dim] if np.isscalar(input_dim) else input_dim
        self.input_dim = tuple(int(d) for d in dims)
        self.degrees, self.translate = tuple(degrees), tuple(translate)
        self.scale, self.shear = tuple(scale), tuple(shear)
        self.enable_mixup, self.mixup_prob = enable_mixup, float(mixup_prob)
        self.mixup_scale = tuple(mixup_scale)
        self.remove_outside_box = remove_outside_box

    def draw_apply(self, rng):
        """ppdet's first draw: True when the mosaic is built (``uniform(0, 1) <= prob``)."""
        return not rng.uniform(0.0, 1.0) > self.prob

    def __call__(self, samples, rng):
        if isinstance(samples, dict):
            return samples
        if len(samples) != self.num_samples:
            raise ValueError(f"Mosaic needs {self.num_samples} samples, got {len(samples)}")
        if not self.draw_apply(rng):
            return samples[0]
        return self.combine(samples, rng.py)

    def combine(self, samples, py_rng):
        """The mosaic of ``samples[:4]`` (+ MixUp of ``samples[4]``), drawing from ``py_rng``."""
        input_h, input_w = self.input_dim
        with_masks = all("masks" in s for s in samples)
        yc = int(py_rng.uniform(0.5 * input_h, 1.5 * input_h))
        xc = int(py_rng.uniform(0.5 * input_w, 1.5 * input_w))
        canvas, tiled, mask_tiles = tile_four(samples[:4], xc, yc, self.input_dim,
                                              with_masks, self.remove_outside_box)
        image, tiled = self._affine(canvas, tiled, mask_tiles, py_rng)
        parts = [tiled]
        if self.enable_mixup and len(tiled["boxes"]) and py_rng.random() < self.mixup_prob:
            image, mixed = self._mixup(image, samples[4], py_rng, with_masks)
            parts.append(mixed)
        out = {k: v for k, v in samples[0].items() if k not in instances.INSTANCE_FIELDS}
        out.update(instances.concatenate(parts, image.shape[:2]), image=image)
        out["boxes"] = out["boxes"].astype(np.float32, copy=False)
        out["labels"] = out["labels"].astype(np.int64, copy=False)
        return out

    def _affine(self, canvas, tiled, mask_tiles, py_rng):
        """Rotate+scale about the origin, shear, translate; warp corners, keep their bounds."""
        degree = py_rng.uniform(*self.degrees)
        scale = py_rng.uniform(*self.scale)
        if scale <= 0:
            raise ValueError(f"Mosaic: scale must be positive, drew {scale}")
        rotation = cv2.getRotationMatrix2D(center=(0, 0), angle=degree, scale=scale)
        shear = math.tan(py_rng.uniform(*self.shear) * math.pi / 180)
        matrix = np.stack([rotation[0] + shear * rotation[1], rotation[1] + shear * rotation[0]])
        translate = py_rng.uniform(*self.translate)
        out_w, out_h = self.input_dim  # ppdet passes input_dim as cv2's (width, height)
        matrix[:, 2] = translate * out_w, translate * out_h
        image = _warp_affine(canvas, matrix, (out_w, out_h), (_FILL,) * 3)
        boxes = tiled["boxes"]
        n = len(boxes)
        if n:
            corners = np.ones((4 * n, 3))
            corners[:, :2] = boxes[:, [0, 1, 2, 3, 0, 3, 2, 1]].reshape(4 * n, 2)
            corners = (corners @ matrix.T).reshape(n, 4, 2)
            warped = np.concatenate([corners.min(1), corners.max(1)], 1)  # x1 y1 x2 y2
            warped[:, 0::2] = np.clip(warped[:, 0::2], 0, out_w)
            warped[:, 1::2] = np.clip(warped[:, 1::2], 0, out_h)
            tiled["boxes"] = warped.astype(np.float32)
        if mask_tiles:
            warped_masks = []
            for masks, (dx, dy) in mask_tiles:
                tile_matrix = matrix.copy()
                tile_matrix[:, 2] += matrix[:, :2] @ np.array([dx, dy], dtype=np.float64)
                warped_masks.append(instances.warp_affine_masks(masks, tile_matrix,
                                                                (out_w, out_h)))
            tiled["masks"] = np.concatenate(warped_masks)
        return image, tiled

    def _mixup(self, image, sample, py_rng, with_masks):
        """Blend ``sample`` (letterboxed, jittered in scale, maybe flipped, randomly cropped)."""
        jitter = py_rng.uniform(*self.mixup_scale)
        flip = py_rng.uniform(0, 1) > 0.5
        source = sample["image"]
        paste = np.full((self.input_dim[0], self.input_dim[1], 3), _FILL, dtype=np.uint8)
        ratio = min(self.input_dim[0] / source.shape[0], self.input_dim[1] / source.shape[1])
        rh, rw = int(source.shape[0] * ratio), int(source.shape[1] * ratio)
        paste[:rh, :rw] = cv2.resize(source, (rw, rh), interpolation=cv2.INTER_LINEAR)
        jittered = (int(paste.shape[1] * jitter), int(paste.shape[0] * jitter))
        paste = cv2.resize(paste, jittered)
        ratio *= jitter
        if flip:
            paste = paste[:, ::-1]
        src_h, src_w = paste.shape[:2]
        dst_h, dst_w = image.shape[:2]
        padded = np.zeros((max(src_h, dst_h), max(src_w, dst_w), 3), dtype=np.uint8)
        padded[:src_h, :src_w] = paste
        y_off = py_rng.randint(0, padded.shape[0] - dst_h - 1) if padded.shape[0] > dst_h else 0
        x_off = py_rng.randint(0, padded.shape[1] - dst_w - 1) if padded.shape[1] > dst_w else 0
        crop = padded[y_off:y_off + dst_h, x_off:x_off + dst_w]

        boxes = sample["boxes"].astype(np.float32).reshape(-1, 4)
        boxes[:, 0::2] = np.clip(boxes[:, 0::2] * ratio, 0, src_w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2] * ratio, 0, src_h)
        if flip:
            boxes[:, 0::2] = src_w - boxes[:, 2::-2]
        boxes[:, 0::2] -= x_off
        boxes[:, 1::2] -= y_off
        mixed = _instances(sample, boxes)
        if with_masks:
            mixed["masks"] = self._mixup_masks(sample["masks"], (rh, rw), jittered, flip,
                                               (y_off, x_off), (dst_h, dst_w))
        if self.remove_outside_box:
            instances.select(mixed, inside_image(boxes, dst_w, dst_h))
        else:
            boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, dst_w)
            boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, dst_h)
        # ppdet: uint8(0.5 * a + 0.5 * b) in float32, i.e. floor((a + b) / 2)
        blended = (image.astype(np.uint16) + crop) >> 1
        return blended.astype(np.uint8), mixed

    def _mixup_masks(self, masks, letterbox, jittered, flip, offset, out_shape):
        """The MixUp image's geometry applied to its (n, H, W) masks (nearest-neighbour)."""
        (rh, rw), (y_off, x_off), (dst_h, dst_w) = letterbox, offset, out_shape
        paste = np.zeros((len(masks), self.input_dim[0], self.input_dim[1]), dtype=np.uint8)
        paste[:, :rh, :rw] = instances.resize_masks_to(masks, rw, rh)
        paste = instances.resize_masks_to(paste, *jittered)
        if flip:
            paste = paste[:, :, ::-1]
        out = np.zeros((len(masks), dst_h, dst_w), dtype=np.uint8)
        window = paste[:, y_off:y_off + dst_h, x_off:x_off + dst_w]
        out[:, :window.shape[1], :window.shape[2]] = window
        return out

    def __repr__(self):
        return (f"{type(self).__name__}(prob={self.prob}, input_dim={self.input_dim}, degrees="
                f"{self.degrees}, translate={self.translate}, scale={self.scale}, shear="
                f"{self.shear}, enable_mixup={self.enable_mixup}, mixup_prob={self.mixup_prob}, "
                f"mixup_scale={self.mixup_scale}, remove_outside_box={self.remove_outside_box})")

"""Mosaic/MixUp and HSV augmentation: ppdet 2.6.0's ``Mosaic`` and ``AugmentHSV`` on uint8 samples.

Samples are the dicts of ``mmdet_lite.data.train_transforms`` (``image`` (H, W, 3) uint8,
``boxes`` (n, 4) float32 x1y1x2y2 pixels, ``labels`` (n,) int64). ppdet draws these operators'
numbers partly from numpy's global RNG and partly from Python's ``random``; here they come from a
``SampleRandom`` (a ``RandomState`` whose ``py`` is a ``random.Random`` of the same seed) in
ppdet's order, so one seed gives ppdet's images and boxes bit for bit when ppdet runs after
``np.random.seed(seed); random.seed(seed)``.

``Mosaic`` takes ppdet's five records (the dataset's own plus four drawn with ``randint``, see
``TrainDataset``'s ``mosaic_epoch``): four are tiled around a random centre of a 2x canvas, the
canvas is warped by a random affine map to ``input_dim`` and the fifth image is blended in
("MixUp as copy-paste"). The pixel arithmetic is ppdet's, in integers where ppdet's float result
is an integer (the 50/50 blend, the HSV shifts).
"""
import math

import cv2
import numpy as np

__all__ = ["Mosaic", "AugmentHSV"]

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


def _inside(boxes, width, height):
    """ppdet's ``remove_outside_box`` test: boxes (n, 4) overlapping ``[0, width] x [0, height]``.
    """
    return ((boxes[:, 0] < width) & (boxes[:, 2] > 0) & (boxes[:, 1] < height)
            & (boxes[:, 3] > 0))


class Mosaic:
    """ppdet ``Mosaic`` (YOLOX's MosaicDetection) with optional MixUp, on five samples.

    ``__call__(samples, rng)`` with a list of 5 samples: with probability ``prob`` (one
    ``rng.uniform`` draw) returns one sample whose ``image`` is (input_dim[1], input_dim[0], 3)
    uint8 and whose ``boxes`` (m, 4) float32 / ``labels`` (m,) int64 hold the boxes of the four
    tiles (warped, clipped) and, with MixUp, of the fifth image; otherwise returns ``samples[0]``.
    A single sample (a dict, as after ``mosaic_epoch``) is returned unchanged without any draw.
    ``rng`` must be a ``SampleRandom``: the geometry is drawn from ``rng.py``.

    As ppdet, boxes are never dropped (unless ``remove_outside_box``): boxes warped or cropped out
    of the image stay as zero-width/height boxes on its border. ``input_dim`` is ``(h, w)`` for
    the canvas but the warp's output size is ``(w, h) = input_dim`` (ppdet's quirk; the same for a
    square ``input_dim``). Other per-instance keys (``is_crowd``) are not carried over.
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
        yc = int(py_rng.uniform(0.5 * input_h, 1.5 * input_h))
        xc = int(py_rng.uniform(0.5 * input_w, 1.5 * input_w))
        canvas, boxes, labels = self._tile(samples[:4], xc, yc)
        image, boxes = self._affine(canvas, boxes, py_rng)
        if self.enable_mixup and len(boxes) and py_rng.random() < self.mixup_prob:
            image, mix_boxes, mix_labels = self._mixup(image, samples[4], py_rng)
            boxes = np.concatenate([boxes, mix_boxes])
            labels = np.concatenate([labels, mix_labels])
        out = dict(samples[0], image=image, boxes=boxes.astype(np.float32, copy=False),
                   labels=labels.astype(np.int64, copy=False))
        out.pop("is_crowd", None)
        return out

    def _tile(self, samples, xc, yc):
        input_h, input_w = self.input_dim
        canvas = np.full((2 * input_h, 2 * input_w, 3), _FILL, dtype=np.uint8)
        boxes, labels = [], []
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
            boxes.append(sample["boxes"].astype(np.float32) * np.float32(ratio) + shift)
            labels.append(np.asarray(sample["labels"], dtype=np.int64).reshape(-1))
        boxes, labels = np.concatenate(boxes).reshape(-1, 4), np.concatenate(labels)
        if self.remove_outside_box:
            keep = _inside(boxes, 2 * input_w, 2 * input_h)
            return canvas, boxes[keep], labels[keep]
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, 2 * input_w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, 2 * input_h)
        return canvas, boxes, labels

    def _affine(self, canvas, boxes, py_rng):
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
        n = len(boxes)
        if n:
            corners = np.ones((4 * n, 3))
            corners[:, :2] = boxes[:, [0, 1, 2, 3, 0, 3, 2, 1]].reshape(4 * n, 2)
            corners = (corners @ matrix.T).reshape(n, 4, 2)
            warped = np.concatenate([corners.min(1), corners.max(1)], 1)  # x1 y1 x2 y2
            warped[:, 0::2] = np.clip(warped[:, 0::2], 0, out_w)
            warped[:, 1::2] = np.clip(warped[:, 1::2], 0, out_h)
            boxes = warped.astype(np.float32)
        return image, boxes

    def _mixup(self, image, sample, py_rng):
        """Blend ``sample`` (letterboxed, jittered in scale, maybe flipped, randomly cropped)."""
        jitter = py_rng.uniform(*self.mixup_scale)
        flip = py_rng.uniform(0, 1) > 0.5
        source = sample["image"]
        paste = np.full((self.input_dim[0], self.input_dim[1], 3), _FILL, dtype=np.uint8)
        ratio = min(self.input_dim[0] / source.shape[0], self.input_dim[1] / source.shape[1])
        rh, rw = int(source.shape[0] * ratio), int(source.shape[1] * ratio)
        paste[:rh, :rw] = cv2.resize(source, (rw, rh), interpolation=cv2.INTER_LINEAR)
        paste = cv2.resize(paste, (int(paste.shape[1] * jitter), int(paste.shape[0] * jitter)))
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
        labels = np.asarray(sample["labels"], dtype=np.int64).reshape(-1)
        if self.remove_outside_box:
            keep = _inside(boxes, dst_w, dst_h)
            boxes, labels = boxes[keep], labels[keep]
        else:
            boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, dst_w)
            boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, dst_h)
        # ppdet: uint8(0.5 * a + 0.5 * b) in float32, i.e. floor((a + b) / 2)
        blended = (image.astype(np.uint16) + crop) >> 1
        return blended.astype(np.uint8), boxes, labels

    def __repr__(self):
        return (f"{type(self).__name__}(prob={self.prob}, input_dim={self.input_dim}, degrees="
                f"{self.degrees}, translate={self.translate}, scale={self.scale}, shear="
                f"{self.shear}, enable_mixup={self.enable_mixup}, mixup_prob={self.mixup_prob}, "
                f"mixup_scale={self.mixup_scale}, remove_outside_box={self.remove_outside_box})")


_HSV_SECTORS = np.array([[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]])
_SIMD_PIXELS = 32  # pixels per vector step of OpenCV 4.5.5's uint8 HSV->RGB on AVX2 (4 x 8 floats)


def _hsv_to_bgr_scalar(hsv):
    """OpenCV 4.5.5's per-pixel (non-vector) uint8 HSV->BGR in float32, (n, 3) -> (n, 3) uint8.

    ``v * (1 - s * h)`` is fused (one rounding) as that build compiles it; checked against it on
    all 180 x 256 x 256 inputs.
    """
    f32 = np.float32
    hue = hsv[:, 0].astype(f32) * (f32(6) / f32(180))
    sat, val = hsv[:, 1].astype(f32) * f32(1 / 255), hsv[:, 2].astype(f32) * f32(1 / 255)
    hue = np.where(hue >= 6, hue - f32(6), hue)
    sector = np.floor(hue).astype(np.int64)
    hue -= sector.astype(f32)
    fused = (val * (1.0 - sat.astype(np.float64) * hue).astype(f32)).astype(f32)
    tab = np.stack([val, val * (f32(1) - sat), fused, val * (f32(1) - sat * (f32(1) - hue))], 1)
    bgr = np.take_along_axis(tab, _HSV_SECTORS[sector], 1)
    bgr[hsv[:, 1] == 0] = val[hsv[:, 1] == 0, None]
    return np.clip(np.rint(bgr * f32(255)), 0, 255).astype(np.uint8)


def _hsv_to_rgb(hsv, is_bgr):
    """``cv2.cvtColor(hsv, HSV2BGR or HSV2RGB)`` as ppdet's OpenCV 4.5.5 computes it (AVX2 CPU).

    Its vector and per-pixel paths round differently: each row's first ``w - w % 32`` pixels take
    the vector path, whose results every OpenCV version shares (computed here with cv2 on rows of
    1024 pixels); the last ``w % 32`` take the per-pixel path (``_hsv_to_bgr_scalar``; OpenCV 5
    gives another value for 172 of the 11.8M inputs).
    """
    h, w = hsv.shape[:2]
    flat = hsv.reshape(-1, 3)
    padded = np.concatenate([flat, np.zeros((-len(flat) % 1024, 3), np.uint8)])
    code = cv2.COLOR_HSV2BGR if is_bgr else cv2.COLOR_HSV2RGB
    out = cv2.cvtColor(padded.reshape(-1, 1024, 3), code).reshape(-1, 3)[:len(flat)]
    out = out.reshape(h, w, 3)
    start = w - w % _SIMD_PIXELS
    if start < w:
        tail = _hsv_to_bgr_scalar(np.ascontiguousarray(hsv[:, start:]).reshape(-1, 3))
        out[:, start:] = tail.reshape(h, w - start, 3)[..., ::1 if is_bgr else -1]
    return out


class AugmentHSV:
    """ppdet ``AugmentHSV``: shift or scale the image's hue/saturation/value in cv2's HSV.

    With gains (``hgain``/``sgain``/``vgain``): draws ``rng.uniform(-1, 1, 3) * gains`` and a
    ``rng.randint(0, 2, 3)`` on/off mask, adds them to H (mod 180), S and V (clipped to 0..255).
    Without: scales S and V by ``1 + fraction * u`` with ``u`` in [-1, 1) from two ``rng.py``
    draws. The uint8 HSV round trip always happens (as in ppdet, it is lossy). ``is_bgr=False``:
    the image is RGB. Image (H, W, 3) uint8 in and out (ppdet's float32 result is integral).
    """

    def __init__(self, fraction=0.5, is_bgr=True, hgain=None, sgain=None, vgain=None):
        self.fraction, self.is_bgr = float(fraction), is_bgr
        self.hgain, self.sgain, self.vgain = hgain, sgain, vgain

    def _tables(self, rng):
        """(256, 1, 3) uint8 look-up table of the drawn change, per HSV channel."""
        values = np.arange(256, dtype=np.uint8)
        if self.hgain is not None:
            gains = rng.uniform(-1, 1, 3) * [self.hgain, self.sgain, self.vgain]
            gains *= rng.randint(0, 2, 3)
            tables = [(values + gains[0]) % 180, np.clip(values + gains[1], 0, 255),
                      np.clip(values + gains[2], 0, 255)]
        else:
            tables = [values]
            for _ in range(2):  # S, then V
                factor = (rng.py.random() * 2 - 1) * self.fraction + 1
                scaled = values.astype(np.float32) * factor
                tables.append(np.clip(scaled, 0, 255) if factor > 1 else scaled)
        return np.stack(tables, 1).astype(np.uint8).reshape(256, 1, 3)

    def __call__(self, sample, rng):
        to_hsv = cv2.COLOR_BGR2HSV if self.is_bgr else cv2.COLOR_RGB2HSV
        hsv = cv2.cvtColor(np.ascontiguousarray(sample["image"]), to_hsv)
        sample["image"] = _hsv_to_rgb(cv2.LUT(hsv, self._tables(rng)), self.is_bgr)
        return sample

    def __repr__(self):
        return (f"{type(self).__name__}(fraction={self.fraction}, is_bgr={self.is_bgr}, hgain="
                f"{self.hgain}, sgain={self.sgain}, vgain={self.vgain})")

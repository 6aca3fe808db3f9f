"""Photometric transforms: ppdet's colour distortions and HSV augmentation on uint8 images.

- ``RandomDistort``: ppdet 2.6.0's float32 ``RandomDistort`` (PicoDet) fused into one affine
  colour transform, applied at once (rounded to uint8: the only difference from ppdet) or, with
  ``defer=True``, stored as ``sample["color_transform"]`` and applied on the model's device by
  ``apply_color_transform`` after the resize (exact: resizing is linear with weights summing to
  one, so it commutes with an affine colour map).
- ``PILRandomDistort``: ppdet develop's PIL ``RandomDistort`` (RT-DETR's reader).
- ``AugmentHSV``: ppdet's ``AugmentHSV`` with OpenCV 4.5.5's HSV arithmetic.
- ``YOLOXHSVRandomAug``: mmdet's (RTMDet): the same draws, integer gains, the installed cv2.

Geometry-free: instances are untouched. Calls are ``t(sample, rng)`` with a ``SampleRandom``,
drawing in ppdet's order (see ``mmdet_lite.data.geometric``).
"""
import cv2
import numpy as np
import torch
from PIL import Image, ImageEnhance

__all__ = ["RandomDistort", "draw_distortion", "apply_color_transform", "PILRandomDistort",
           "AugmentHSV", "YOLOXHSVRandomAug"]

_LUMA = np.array([0.299, 0.587, 0.114])
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.321], [0.211, -0.523, 0.311]])
_YIQ_TO_RGB = np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.107, 1.705]])


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


def apply_color_transform(images, color_transforms):
    """Apply deferred ``RandomDistort`` transforms on the device, before normalisation.

    ``images``: float (B, 3, H, W) RGB in 0..255 (not clipped afterwards, as in ppdet);
    ``color_transforms``: (B, 3, 4) ``[M | v]``. Returns ``M @ rgb + v`` per pixel, (B, 3, H, W).
    """
    ct = color_transforms.to(device=images.device, dtype=images.dtype)
    return torch.einsum("bij,bjhw->bihw", ct[:, :, :3], images) + ct[:, :, 3, None, None]


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


class YOLOXHSVRandomAug:
    """mmdet ``YOLOXHSVRandomAug``: add ``int16(rng.uniform(-1, 1, 3) * deltas * rng.randint(0, 2,
    3))`` to cv2's uint8 H (mod 180), S and V (clipped to 0..255), with the installed cv2's
    conversions as mmdet uses them (RGB here, BGR in mmdet: the same HSV). Image (H, W, 3) uint8.
    """

    def __init__(self, hue_delta=5, saturation_delta=30, value_delta=30):
        self.deltas = (hue_delta, saturation_delta, value_delta)

    def __call__(self, sample, rng):
        gains = rng.uniform(-1, 1, 3) * list(self.deltas)
        gains = (gains * rng.randint(0, 2, 3)).astype(np.int16)
        values = np.arange(256, dtype=np.int16)
        table = np.stack([(values + gains[0]) % 180, np.clip(values + gains[1], 0, 255),
                          np.clip(values + gains[2], 0, 255)], 1).astype(np.uint8)
        hsv = cv2.cvtColor(np.ascontiguousarray(sample["image"]), cv2.COLOR_RGB2HSV)
        shifted = cv2.LUT(hsv, table.reshape(256, 1, 3))
        sample["image"] = cv2.cvtColor(shifted, cv2.COLOR_HSV2RGB)
        return sample

    def __repr__(self):
        hue, saturation, value = self.deltas
        return (f"{type(self).__name__}(hue_delta={hue}, saturation_delta={saturation}, "
                f"value_delta={value})")

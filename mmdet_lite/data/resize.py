"""ppdet's resizes of single samples and the ``PadBatch`` batch step (SOLOv2's readers); mmdet's
keep-ratio ``Resize`` / ``RandomResize`` (RTMDet).

``Resize`` and ``RandomResize`` are sample transforms (``t(sample, rng)``, see
``mmdet_lite.data.geometric``): cv2's ``fx``/``fy`` resize of the uint8 image exactly as ppdet's
``Resize.apply_image``, boxes scaled and clipped to the resized size, masks nearest-neighbour
(``mmdet_lite.data.instances.resize``). Images of one batch may then differ in size: ``PadBatch``
pads them (and their masks) to one size, as ppdet's ``PadBatch`` does.
"""
import math
import numbers

import cv2
import numpy as np

from mmdet_lite.data import instances

__all__ = ["INTERPOLATIONS", "keep_ratio_scale", "resize_scales", "Resize", "RandomResize",
           "PadBatch", "mmcv_rescale_size", "MMDetResize", "MMDetRandomResize"]

INTERPOLATIONS = (cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_AREA, cv2.INTER_CUBIC,
                  cv2.INTER_LANCZOS4)
"""ppdet's interpolation list (``BatchRandomResize`` / ``RandomResize`` ``random_interp``)."""


def keep_ratio_scale(height, width, target_size):
    """ppdet's keep-ratio scale (a Python float): the short side to at most ``min(target_size)``,
    the long side to at most ``max(target_size)``."""
    return min(min(target_size) / min(height, width), max(target_size) / max(height, width))


def resize_scales(height, width, target_size, keep_ratio):
    """``(scale_x, scale_y, out_w, out_h)`` of ppdet's ``Resize`` for an image ``height x width``.

    ``out_w``/``out_h`` are the (float) resized sizes that boxes are clipped to; all are Python
    floats, so float32 boxes are scaled in float32 as ppdet's numpy 1.x does.
    """
    if keep_ratio:
        scale = keep_ratio_scale(height, width, target_size)
        return scale, scale, scale * float(width), scale * float(height)
    out_h, out_w = target_size
    return out_w / width, out_h / height, out_w, out_h


def _as_size(target_size, owner):
    if isinstance(target_size, numbers.Integral):
        return (int(target_size), int(target_size))
    if len(target_size) != 2:
        raise ValueError(f"{owner}: target_size must be an int or (h, w), got {target_size!r}")
    return tuple(int(s) for s in target_size)


def resize_sample(sample, target_size, keep_ratio, interp):
    """Resize one sample in place as ppdet's ``Resize(target_size, keep_ratio, interp)``."""
    height, width = sample["image"].shape[:2]
    scale_x, scale_y, out_w, out_h = resize_scales(height, width, target_size, keep_ratio)
    image = cv2.resize(sample["image"], None, None, fx=scale_x, fy=scale_y, interpolation=interp)
    return instances.resize(sample, image, scale_x, scale_y, out_w, out_h)


class Resize:
    """ppdet ``Resize``: to ``target_size`` ``(h, w)`` (an int: square), or with ``keep_ratio``
    by one scale that fits the short side in ``min(target_size)`` and the long side in
    ``max(target_size)`` (no padding). ``interp`` is a cv2 flag (ppdet's default INTER_LINEAR).
    Draws nothing."""

    def __init__(self, target_size, keep_ratio, interp=cv2.INTER_LINEAR):
        self.target_size = _as_size(target_size, "Resize")
        self.keep_ratio, self.interp = bool(keep_ratio), int(interp)

    def __call__(self, sample, rng=None):
        return resize_sample(sample, self.target_size, self.keep_ratio, self.interp)

    def __repr__(self):
        return (f"{type(self).__name__}(target_size={self.target_size}, keep_ratio="
                f"{self.keep_ratio}, interp={self.interp})")


class RandomResize:
    """ppdet ``RandomResize``: a ``Resize`` to a size drawn per sample.

    ``random_size``: one of the sizes ``target_size`` (a list of ints or ``(h, w)``), drawn with
    ``rng.py.choice`` (ppdet: ``random.choice``); ``random_range``: ``target_size`` is
    ``[[min_short, long], [max_short, long']]`` and the size ``[rng.randint(min_short,
    max_short + 1), max(long, long' + 1)]`` (ppdet's numpy draw, its ``+ 1`` included); neither:
    ``target_size`` itself. ``random_interp`` draws the interpolation from ``INTERPOLATIONS``
    with ``rng.py.choice`` after the size; otherwise ``interp``.
    """

    def __init__(self, target_size, keep_ratio=True, interp=cv2.INTER_LINEAR, random_range=False,
                 random_size=True, random_interp=False):
        if random_range or random_size:
            if isinstance(target_size, numbers.Integral) or not len(target_size):
                raise ValueError("RandomResize: target_size must be a non-empty list of sizes "
                                 f"with random_size or random_range, got {target_size!r}")
            sizes = [_as_size(s, "RandomResize") for s in target_size]
            if random_range and len(sizes) != 2:
                raise ValueError("RandomResize: random_range needs target_size [[min_short, "
                                 f"long], [max_short, long]], got {target_size!r}")
            self.target_size = sizes
        else:
            self.target_size = _as_size(target_size, "RandomResize")
        self.keep_ratio, self.interp = bool(keep_ratio), int(interp)
        self.random_range, self.random_size = bool(random_range), bool(random_size)
        self.random_interp = bool(random_interp)

    def draw(self, rng):
        """-> ``(target_size, interp)`` of one sample, drawn as ppdet draws them."""
        if self.random_range:
            (min_short, long_a), (max_short, long_b) = self.target_size
            size = (int(rng.randint(min_short, max_short + 1)), max(long_a, long_b + 1))
        elif self.random_size:
            size = rng.py.choice(self.target_size)
        else:
            size = self.target_size
        interp = int(rng.py.choice(INTERPOLATIONS)) if self.random_interp else self.interp
        return size, interp

    def __call__(self, sample, rng):
        size, interp = self.draw(rng)
        return resize_sample(sample, size, self.keep_ratio, interp)

    def __repr__(self):
        return (f"{type(self).__name__}(target_size={self.target_size}, keep_ratio="
                f"{self.keep_ratio}, interp={self.interp}, random_range={self.random_range}, "
                f"random_size={self.random_size}, random_interp={self.random_interp})")


class PadBatch:
    """ppdet ``PadBatch``: the batch step of ``TrainCollate`` for images of different sizes.

    Every image (H_i, W_i, 3) and its masks are zero-padded bottom/right to the batch's largest
    height and width, each rounded up to a multiple of ``pad_to_stride`` (when > 0); boxes are
    unchanged. Each sample records ``input_size`` ``(H_i, W_i)`` (its size before padding;
    ``TrainCollate`` stacks them as ``input_sizes``). ppdet pads the normalised image with zeros,
    i.e. the pixel mean: here the uint8 pixels are padded with 0, and ``input_sizes`` tells the
    model which region is padding. Draws nothing (``draw`` returns ``()``).
    """

    def __init__(self, pad_to_stride=0):
        self.pad_to_stride = int(pad_to_stride)
        if self.pad_to_stride < 0:
            raise ValueError(f"PadBatch: pad_to_stride must be >= 0, got {pad_to_stride}")

    def draw(self, rng):
        return ()

    def padded_size(self, sizes):
        """The batch's ``(H, W)`` for the images' ``sizes`` [(h, w), ...]."""
        height, width = (max(s[k] for s in sizes) for k in (0, 1))
        if self.pad_to_stride > 0:
            stride = self.pad_to_stride
            height, width = (int(math.ceil(v / stride) * stride) for v in (height, width))
        return height, width

    def __call__(self, samples):
        sizes = [s["image"].shape[:2] for s in samples]
        height, width = self.padded_size(sizes)
        for sample, size in zip(samples, sizes):
            sample["input_size"] = tuple(int(v) for v in size)
            if size != (height, width):
                canvas = np.zeros((height, width, 3), dtype=sample["image"].dtype)
                instances.place_on_canvas(sample, canvas, 0, 0)
        return samples

    def __repr__(self):
        return f"{type(self).__name__}(pad_to_stride={self.pad_to_stride})"


def mmcv_rescale_size(height, width, scale):
    """mmcv's ``rescale_size``: ``(new_w, new_h, factor)`` fitting the long side in ``max(scale)``
    and the short side in ``min(scale)``, each side ``int(side * factor + 0.5)``."""
    factor = min(max(scale) / max(height, width), min(scale) / min(height, width))
    return int(width * factor + 0.5), int(height * factor + 0.5), factor


class MMDetResize:
    """mmdet ``Resize(scale, keep_ratio)``: cv2 bilinear to mmcv's ``rescale_size`` (``keep_ratio``)
    or to ``scale`` ``(w, h)``; boxes scaled by ``new / old`` per axis and clipped to the new size,
    masks nearest-neighbour. Draws nothing; ``__call__(sample, rng=None)``."""

    def __init__(self, scale, keep_ratio=True):
        self.scale = _as_size(scale, "Resize")
        self.keep_ratio = bool(keep_ratio)

    def resize(self, sample, scale):
        """``sample`` resized in place for the target ``scale`` ``(w, h)``."""
        height, width = sample["image"].shape[:2]
        if self.keep_ratio:
            new_w, new_h, _ = mmcv_rescale_size(height, width, scale)
        else:
            new_w, new_h = scale
        image = cv2.resize(sample["image"], (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        return instances.resize(sample, image, new_w / width, new_h / height, new_w, new_h)

    def __call__(self, sample, rng=None):
        return self.resize(sample, self.scale)

    def __repr__(self):
        return f"{type(self).__name__}(scale={self.scale}, keep_ratio={self.keep_ratio})"


class MMDetRandomResize(MMDetResize):
    """mmcv ``RandomResize(scale, ratio_range)`` with mmdet's ``Resize``: the target
    ``(int(w * r), int(h * r))`` for ``r = rng.random_sample() * (max - min) + min``
    (mmcv's numpy draw)."""

    def __init__(self, scale, ratio_range=(0.1, 2.0), keep_ratio=True):
        super().__init__(scale, keep_ratio)
        self.ratio_range = tuple(float(r) for r in ratio_range)
        if not 0 < self.ratio_range[0] <= self.ratio_range[1]:
            raise ValueError(f"RandomResize: ratio_range must be (min, max) with 0 < min <= max, "
                             f"got {ratio_range!r}")

    def __call__(self, sample, rng):
        low, high = self.ratio_range
        ratio = rng.random_sample() * (high - low) + low
        return self.resize(sample, (int(self.scale[0] * ratio), int(self.scale[1] * ratio)))

    def __repr__(self):
        return (f"{type(self).__name__}(scale={self.scale}, ratio_range={self.ratio_range}, "
                f"keep_ratio={self.keep_ratio})")

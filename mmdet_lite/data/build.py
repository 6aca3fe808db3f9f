"""Sample transforms from an exp's config: one registry of ppdet-named transforms, all families."""
from mmdet_lite.data.cached_mix import CachedMixUp, CachedMosaic
from mmdet_lite.data.geometric import MMDetRandomCrop, Pad, RandomCrop, RandomExpand, RandomFlip
from mmdet_lite.data.mosaic import Mosaic
from mmdet_lite.data.photometric import (
    AugmentHSV,
    PILRandomDistort,
    RandomDistort,
    YOLOXHSVRandomAug,
)
from mmdet_lite.data.resize import MMDetRandomResize, MMDetResize, RandomResize, Resize
from mmdet_lite.utils.registry import Registry

__all__ = ["TRAIN_TRANSFORMS", "MMDET_TRANSFORM_ALIASES", "build_sample_transforms"]

TRAIN_TRANSFORMS = Registry("train_transforms", {
    "RandomCrop": RandomCrop, "RandomFlip": RandomFlip, "RandomExpand": RandomExpand,
    "RandomDistort": RandomDistort, "PILRandomDistort": PILRandomDistort,
    "AugmentHSV": AugmentHSV, "Mosaic": Mosaic, "Resize": Resize, "RandomResize": RandomResize,
    "CachedMosaic": CachedMosaic, "CachedMixUp": CachedMixUp, "MMDetRandomCrop": MMDetRandomCrop,
    "MMDetResize": MMDetResize, "MMDetRandomResize": MMDetRandomResize, "Pad": Pad,
    "YOLOXHSVRandomAug": YOLOXHSVRandomAug,
})
"""ppdet's operator names -> our transforms (``PILRandomDistort`` is ppdet develop's
``RandomDistort``; a family maps the name to its ppdet version with ``aliases``), and mmdet's."""

MMDET_TRANSFORM_ALIASES = {"RandomCrop": "MMDetRandomCrop", "Resize": "MMDetResize",
                           "RandomResize": "MMDetRandomResize"}
"""``aliases`` for mmdet-named pipelines (RTMDet): mmdet's names whose ppdet namesake differs.
mmcv's ``RandomFlip(prob)`` draws and flips as ppdet's: one class."""


def build_sample_transforms(config, owner=None, aliases=None):
    """``{ppdet name: kwargs}`` (ppdet's ``sample_transforms`` after ``Decode``, in order) -> list
    of transforms; ``None`` or ``{}``: none.

    ``aliases`` maps a config name to the registered one (RT-DETR: ``{"RandomDistort":
    "PILRandomDistort"}``). An unknown name or a bad argument is a ``UserError`` naming ``owner``
    and the transform.
    """
    aliases = aliases or {}
    return [TRAIN_TRANSFORMS.create(aliases.get(name, name), kwargs, owner)
            for name, kwargs in (config or {}).items()]

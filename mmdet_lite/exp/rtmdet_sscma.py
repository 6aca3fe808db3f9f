"""SSCMA's RTMDet-nano recipe (Seeed-Studio/ModelAssistant ``configs/rtmdet/``) on RTMDetExp."""
from .rtmdet_base import MMDET_MEAN, MMDET_STD, RTMDetExp

__all__ = ["SSCMANanoExp", "SSCMA_SOURCE"]

SSCMA_SOURCE = "Seeed-Studio/ModelAssistant@dea366bea7db68c9224b6eef6bb40f2ce8ab8515"


class SSCMANanoExp(RTMDetExp):
    """The values both SSCMA nano configs share (``rtmdet_nano_8xb32_300e_coco_relu.py`` and
    ``..._ncadc_relu6.py``; the activation, channel attention, SPP pooling and normalisation are
    the relu file's, the ncadc exp overrides them).

    SSCMA builds mmyolo's RTMDet: ``deepen_factor`` 0.33 / ``widen_factor`` 0.25 also scale its
    neck (out 256 -> 64 channels, ``round(3 * 0.33)`` = 1 CSP block) and head (64 channels);
    the head has ``share_conv=False``; ``split_max_pool`` chains 3x3 pools (same numbers as one
    pool). Its checkpoints use mmyolo's key names (``convert_rules``). Training differs from
    mmdet's: a YOLOv5-style MixUp (a Beta(32, 32) blend with a cached image of the same size),
    stage-2 RandomResize to twice the input size, ``base_lr`` 0.0005 for ONE batch of 32
    (``auto_scale_lr`` base 32), a 2000-iteration warm-up and mixed precision (``--fp16``).
    Everything else is mmdet's recipe. Train at 192 with ``input_size 192 192 test_size 192 192``.
    """

    def __init__(self):
        super().__init__()
        # ---------------- model ----------------
        self.backbone.update(deepen_factor=0.33, widen_factor=0.25, channel_attention=True,
                             split_max_pool=True, act="relu")
        self.neck.update(out_channels=64, num_csp_blocks=1, act="relu")
        self.head.update(feat_channels=64, share_conv=False, exp_on_reg=False, act="relu")
        self.pixel_mean = MMDET_MEAN
        self.pixel_std = MMDET_STD

        # ---------------- data ----------------
        self.train_transforms["CachedMosaic"].update(max_cached_images=20, random_pop=False)
        self.train_transforms["RandomResize"].update(ratio_range=(0.5, 2.0))
        del self.train_transforms["CachedMixUp"]
        self.train_transforms["YOLOv5MixUp"] = dict(alpha=32.0, beta=32.0, max_cached_images=10,
                                                    random_pop=False, prob=0.5)
        self.train_transforms_stage2["RandomResize"].update(scale=2, ratio_range=(0.5, 2.0))
        self.train_batch_size = 32
        self.eval_batch_size = 32
        self.data_num_workers = 16

        # ---------------- schedule ----------------
        self.base_lr = 0.0005
        self.ref_num_devices = 1
        self.warmup.update(end=2000)
        self.print_interval = 100

    @property
    def convert_rules(self):
        from mmdet_lite.convert.rtmdet_rules import SSCMA_RTMDET_RULES

        return SSCMA_RTMDET_RULES

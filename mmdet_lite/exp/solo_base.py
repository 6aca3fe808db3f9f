"""SOLOv2 exps for the original SOLO repository's PyTorch checkpoints (WXinlong/SOLO,
mmdetection 1.x): ``SOLOv2_R50_3x.pth`` and ``SOLOv2_LIGHT_448_R50_3x.pth``."""
from .solov2_base import MULTI_SCALE_3X, SOLOv2Exp

__all__ = ["SOLOExp", "MMDET_PIXEL_MEAN", "MMDET_PIXEL_STD"]

MMDET_PIXEL_MEAN = (123.675, 116.28, 103.53)
"""mmdet's ``img_norm_cfg`` mean on 0..255 RGB pixels (``to_rgb=True``)."""
MMDET_PIXEL_STD = (58.395, 57.12, 57.375)


class SOLOExp(SOLOv2Exp):
    """``configs/solov2/solov2_r50_fpn_8gpu_3x.py`` of WXinlong/SOLO on our SOLOv2 modules.

    SOLO's SOLOv2 is the network PaddleDetection ported (same ResNet-50 ``style='pytorch'`` = our
    variant b, FPN with max-pool P6, ``SOLOv2Head`` towers with GroupNorm 32 and bias-free convs,
    ``MaskFeatHead`` with CoordConv on level 3), so only settings differ from
    ``solov2_r50_fpn_3x_coco``: the weights are a PyTorch ``.pth`` (``convert_source_kinds``,
    renamed by ``solo_rules``); the normalisation is mmdet's mean/std on 0..255 RGB (stored
    here divided by 255, as our model normalises ``x / 255``; equal to ImageNet's 0.485.../0.229...
    up to float rounding); ``test_cfg`` (nms_pre 500, score_thr 0.1, mask_thr 0.5, update_thr
    0.05, gaussian kernel, sigma 2.0, max_per_img 100) equals Paddle's defaults; the schedule is
    SOLO's: 36 epochs, steps at 27 and 33, linear warmup over 500 iterations from 0.01, gradient
    norm clipped at 35; ``frozen_stages=1`` (stem and ``layer1``) is Paddle's ``freeze_at 0``.
    """

    convert_source_kinds = ("torch",)

    def __init__(self):
        super().__init__()
        self.pixel_mean = tuple(v / 255.0 for v in MMDET_PIXEL_MEAN)
        self.pixel_std = tuple(v / 255.0 for v in MMDET_PIXEL_STD)
        self.mask_nms.update(pre_nms_top_n=500, post_nms_top_n=100, update_threshold=0.05,
                             kernel="gaussian", sigma=2.0)
        self.head.update(score_threshold=0.1, mask_threshold=0.5)
        self.train_transforms = {"RandomResize": {"interp": 1, "target_size": MULTI_SCALE_3X,
                                                  "keep_ratio": True},
                                 "RandomFlip": {}}
        self.max_epoch = 36
        self.lr_decay.update(milestones=[27, 33])
        self.warmup.update(steps=500, start_factor=0.01)
        self.clip_grad_norm = 35.0

    @property
    def convert_rules(self):
        from mmdet_lite.convert.solo_rules import SOLO_RULES

        return SOLO_RULES

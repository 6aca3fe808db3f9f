"""RTMDet-tiny on COCO: mmdet 3.3.0 configs/rtmdet/rtmdet_tiny_8xb32-300e_coco.py (on _s_).

The backbone starts from ``cspnext-tiny_imagenet_600e.pth``. Smaller, non-random caches for
CachedMosaic (20) and CachedMixUp (10, applied with probability 0.5).
"""
from mmdet_lite.exp import RTMDetExp


class Exp(RTMDetExp):
    def __init__(self):
        super().__init__()
        self.backbone.update(deepen_factor=0.167, widen_factor=0.375)
        self.neck.update(out_channels=96, num_csp_blocks=1)
        self.head.update(feat_channels=96, exp_on_reg=False)
        self.train_transforms["CachedMosaic"].update(max_cached_images=20, random_pop=False)
        self.train_transforms["RandomResize"].update(ratio_range=(0.5, 2.0))
        self.train_transforms["CachedMixUp"].update(max_cached_images=10, random_pop=False,
                                                    prob=0.5)
        self.train_transforms_stage2["RandomResize"].update(ratio_range=(0.5, 2.0))

"""SOLOv2-R50-FPN, 3x schedule: PaddleDetection configs/solov2/solov2_r50_fpn_3x_coco.yml.

36 epochs (LR steps at 24 and 33) with multi-scale training: a keep-ratio ``RandomResize`` of the
short side to 640..800 (long side 1333).
"""
from mmdet_lite.exp import SOLOv2Exp
from mmdet_lite.exp.solov2_base import MULTI_SCALE_3X


class Exp(SOLOv2Exp):
    def __init__(self):
        super().__init__()
        self.max_epoch = 36
        self.lr_decay.update(milestones=[24, 33])
        self.warmup.update(steps=1000)
        self.train_transforms = {"RandomResize": {"interp": 1, "target_size": MULTI_SCALE_3X,
                                                  "keep_ratio": True},
                                 "RandomFlip": {}}

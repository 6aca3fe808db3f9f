"""SOLOv2-R101-vd-FPN with DCNv2, 3x schedule: PaddleDetection
configs/solov2/solov2_r101_vd_fpn_3x_coco.yml.

ResNet101-vd with DCNv2 in res3..res5, every head tower conv and the mask-feature tower DCN;
36 epochs (LR steps at 24 and 33, 2000 warmup steps), multi-scale training as the R50 3x, EMA.
"""
from mmdet_lite.exp import SOLOv2Exp
from mmdet_lite.exp.solov2_base import MULTI_SCALE_3X


class Exp(SOLOv2Exp):
    def __init__(self):
        super().__init__()
        self.backbone.update(depth=101, variant="d", dcn_v2_stages=[1, 2, 3])
        self.head.update(dcn_v2_stages=[0, 1, 2, 3])
        self.mask_head.update(use_dcn_in_tower=True)
        self.max_epoch = 36
        self.lr_decay.update(milestones=[24, 33])
        self.warmup.update(steps=2000)
        self.train_transforms = {"RandomResize": {"interp": 1, "target_size": MULTI_SCALE_3X,
                                                  "keep_ratio": True},
                                 "RandomFlip": {}}
        self.use_ema = True
        self.ema_decay = 0.9998

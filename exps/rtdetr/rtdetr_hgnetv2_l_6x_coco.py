"""RT-DETR-L on COCO: PaddleDetection configs/rtdetr/rtdetr_hgnetv2_l_6x_coco.yml.

PP-HGNetV2-L backbone (frozen stem and BatchNorm, LR multipliers 0 for the stem and 0.05 for the
stages), the base's encoder and 6-layer decoder.
"""
from mmdet_lite.exp import RTDETRExp


class Exp(RTDETRExp):
    def __init__(self):
        super().__init__()
        self.backbone = dict(name="PPHGNetV2", arch="L", use_lab=False, return_idx=[1, 2, 3],
                             freeze_stem_only=True, freeze_at=0, freeze_norm=True,
                             lr_mult_list=[0.0, 0.05, 0.05, 0.05, 0.05])

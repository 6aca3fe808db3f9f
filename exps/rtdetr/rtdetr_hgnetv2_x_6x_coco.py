"""RT-DETR-X on COCO: PaddleDetection configs/rtdetr/rtdetr_hgnetv2_x_6x_coco.yml.

PP-HGNetV2-X backbone (frozen stem and BatchNorm, LR multipliers 0 for the stem and 0.01 for the
stages); encoder width 384 (FFN 2048); the decoder stays 256 wide.
"""
from mmdet_lite.exp import RTDETRExp


class Exp(RTDETRExp):
    def __init__(self):
        super().__init__()
        self.backbone = dict(name="PPHGNetV2", arch="X", use_lab=False, return_idx=[1, 2, 3],
                             freeze_stem_only=True, freeze_at=0, freeze_norm=True,
                             lr_mult_list=[0.0, 0.01, 0.01, 0.01, 0.01])
        self.encoder.update(hidden_dim=384)
        self.encoder["encoder_layer"].update(d_model=384, dim_feedforward=2048)

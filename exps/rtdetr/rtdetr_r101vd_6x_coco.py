"""RT-DETR-R101 on COCO: PaddleDetection configs/rtdetr/rtdetr_r101vd_6x_coco.yml.

ResNet101-vd with backbone LR multiplier 0.01; encoder width 384 (FFN 2048). The decoder stays
256 wide (Paddle's shared ``hidden_dim``), projecting the 384-channel maps.
"""
from mmdet_lite.exp import RTDETRExp


class Exp(RTDETRExp):
    def __init__(self):
        super().__init__()
        self.backbone.update(depth=101, lr_mult_list=[0.01, 0.01, 0.01, 0.01])
        self.encoder.update(hidden_dim=384)
        self.encoder["encoder_layer"].update(d_model=384, dim_feedforward=2048)

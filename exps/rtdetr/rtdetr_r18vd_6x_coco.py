"""RT-DETR-R18 on COCO: PaddleDetection configs/rtdetr/rtdetr_r18vd_6x_coco.yml.

ResNet18-vd trained from its first layer (``freeze_at: -1``, BatchNorm not frozen), still with the
base's backbone LR multiplier 0.1; encoder CSP expansion 0.5; 3 decoder layers.
"""
from mmdet_lite.exp import RTDETRExp


class Exp(RTDETRExp):
    def __init__(self):
        super().__init__()
        self.backbone.update(depth=18, freeze_at=-1, freeze_norm=False, norm_decay=0.0)
        self.encoder.update(expansion=0.5, depth_mult=1.0)
        self.decoder.update(num_decoder_layers=3, eval_idx=-1)

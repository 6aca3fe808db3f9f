"""RT-DETR-R34 on COCO: PaddleDetection configs/rtdetr/rtdetr_r34vd_6x_coco.yml.

ResNet34-vd trained from its first layer (``freeze_at: -1``, BatchNorm not frozen), backbone LR
multiplier 0.1 from the base; encoder CSP expansion 0.5; 4 decoder layers.
"""
from mmdet_lite.exp import RTDETRExp


class Exp(RTDETRExp):
    def __init__(self):
        super().__init__()
        self.backbone.update(depth=34, freeze_at=-1, freeze_norm=False, norm_decay=0.0)
        self.encoder.update(expansion=0.5, depth_mult=1.0)
        self.decoder.update(num_decoder_layers=4, eval_idx=-1)

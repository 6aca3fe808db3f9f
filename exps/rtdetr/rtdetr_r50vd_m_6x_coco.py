"""RT-DETR-R50-M on COCO: PaddleDetection configs/rtdetr/rtdetr_r50vd_m_6x_coco.yml.

RT-DETR-R50 with encoder CSP expansion 0.5, evaluated with the 3rd of its 6 decoder layers.
"""
from mmdet_lite.exp import RTDETRExp


class Exp(RTDETRExp):
    def __init__(self):
        super().__init__()
        self.encoder.update(expansion=0.5, depth_mult=1.0)
        self.decoder.update(eval_idx=2)

"""RTMDet-M on COCO: mmdet 3.3.0 configs/rtmdet/rtmdet_m_8xb32-300e_coco.py."""
from mmdet_lite.exp import RTMDetExp


class Exp(RTMDetExp):
    def __init__(self):
        super().__init__()
        self.backbone.update(deepen_factor=0.67, widen_factor=0.75)
        self.neck.update(out_channels=192, num_csp_blocks=2)
        self.head.update(feat_channels=192)

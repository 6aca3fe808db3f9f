"""RTMDet-X on COCO: mmdet 3.3.0 configs/rtmdet/rtmdet_x_8xb32-300e_coco.py."""
from mmdet_lite.exp import RTMDetExp


class Exp(RTMDetExp):
    def __init__(self):
        super().__init__()
        self.backbone.update(deepen_factor=1.33, widen_factor=1.25)
        self.neck.update(out_channels=320, num_csp_blocks=4)
        self.head.update(feat_channels=320)

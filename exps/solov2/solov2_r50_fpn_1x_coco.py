"""SOLOv2-R50-FPN, 1x schedule: PaddleDetection configs/solov2/solov2_r50_fpn_1x_coco.yml
(the family base)."""
from mmdet_lite.exp import SOLOv2Exp


class Exp(SOLOv2Exp):
    pass

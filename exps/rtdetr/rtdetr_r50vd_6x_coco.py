"""RT-DETR-R50 on COCO: PaddleDetection configs/rtdetr/rtdetr_r50vd_6x_coco.yml (the family
base)."""
from mmdet_lite.exp import RTDETRExp


class Exp(RTDETRExp):
    pass

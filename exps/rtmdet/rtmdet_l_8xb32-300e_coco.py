"""RTMDet-L on COCO: mmdet 3.3.0 configs/rtmdet/rtmdet_l_8xb32-300e_coco.py (the family base)."""
from mmdet_lite.exp import RTMDetExp


class Exp(RTMDetExp):
    pass

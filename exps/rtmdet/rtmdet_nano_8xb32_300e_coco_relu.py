"""RTMDet-nano (ReLU) on COCO: SSCMA configs/rtmdet/rtmdet_nano_8xb32_300e_coco_relu.py.

CSPNeXt x0.33 depth / x0.25 width with channel attention and split SPP pooling, ReLU everywhere,
mmdet's mean/std on BGR. At 192: ``input_size 192 192 test_size 192 192``.
"""
from mmdet_lite.exp.rtmdet_sscma import SSCMANanoExp


class Exp(SSCMANanoExp):
    pass

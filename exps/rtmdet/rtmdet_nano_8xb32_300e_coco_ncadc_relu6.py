"""RTMDet-nano (ReLU6, no channel attention) on COCO: SSCMA
configs/rtmdet/rtmdet_nano_8xb32_300e_coco_ncadc_relu6.py.

SSCMA's quantisation-friendly nano: no channel attention, plain SPP pools, ReLU6, input scaled
to 0..1 (mean 0, std 255) on BGR. SSCMA's mask example (../shared/seeds/004) trains it at 192
on two classes for 150 epochs: see readme_rtmdet.txt.
"""
from mmdet_lite.exp.rtmdet_sscma import SSCMANanoExp


class Exp(SSCMANanoExp):
    def __init__(self):
        super().__init__()
        self.backbone.update(channel_attention=False, split_max_pool=False, act="relu6")
        self.neck.update(act="relu6")
        self.head.update(act="relu6")
        self.pixel_mean = (0.0, 0.0, 0.0)
        self.pixel_std = (255.0, 255.0, 255.0)
        self.eval_batch_size = 16

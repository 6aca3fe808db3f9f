"""SOLOv2-Light-448 R50-FPN 3x of the original SOLO repository (WXinlong/SOLO
``configs/solov2/solov2_light_448_r50_fpn_8gpu_3x.py``), for its ``SOLOv2_LIGHT_448_R50_3x.pth``.

The light head: 2 stacked 256-channel convs per tower, 128 kernel channels (``ins_out_channels``)
and 128 mask-feature channels (the mask head's ``num_classes``; its tower stays 128); test size
448x768 (``img_scale=(768, 448)``), training short side 352..512 with long side 768, the scale
ranges of its ``SOLOv2Head``. Everything else is ``SOLOExp``'s.
"""
from mmdet_lite.exp.solo_base import SOLOExp

LIGHT_448_SIZES = [[352, 768], [384, 768], [416, 768], [448, 768], [480, 768], [512, 768]]


class Exp(SOLOExp):
    def __init__(self):
        super().__init__()
        self.head.update(seg_feat_channels=256, stacked_convs=2, kernel_out_channels=128)
        self.mask_head.update(mid_channels=128, out_channels=128)
        self.input_size = (448, 768)
        self.test_size = (448, 768)
        self.train_transforms = {"RandomResize": {"interp": 1, "target_size": LIGHT_448_SIZES,
                                                  "keep_ratio": True},
                                 "RandomFlip": {}}
        self.solov2_targets.update(
            scale_ranges=[[1, 56], [28, 112], [56, 224], [112, 448], [224, 896]])

"""RTMDet-S on COCO: mmdet 3.3.0 configs/rtmdet/rtmdet_s_8xb32-300e_coco.py.

The backbone starts from mmdet's CSPNeXt-s ImageNet checkpoint (``cspnext-s_imagenet_600e.pth``:
``tools/convert_weights.py --only_backbone True``, then ``-c``). RandomResize ratios 0.5..2 in
both stages, no ``exp`` on the regression.
"""
from mmdet_lite.exp import RTMDetExp


class Exp(RTMDetExp):
    def __init__(self):
        super().__init__()
        self.backbone.update(deepen_factor=0.33, widen_factor=0.5)
        self.neck.update(out_channels=128, num_csp_blocks=1)
        self.head.update(feat_channels=128, exp_on_reg=False)
        self.train_transforms["RandomResize"].update(ratio_range=(0.5, 2.0))
        self.train_transforms_stage2["RandomResize"].update(ratio_range=(0.5, 2.0))

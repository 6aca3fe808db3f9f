"""SOLOv2-R50-FPN 3x of the original SOLO repository (WXinlong/SOLO
``configs/solov2/solov2_r50_fpn_8gpu_3x.py``), for its ``SOLOv2_R50_3x.pth``.

Convert: ``python tools/convert_weights.py -f exps/solov2/solov2_r50_fpn_3x_solo.py
-c SOLOv2_R50_3x.pth -oc solov2_r50_fpn_3x_solo.pth``. The network and test settings are those
of ``solov2_r50_fpn_3x_coco`` (800x1333); see ``mmdet_lite.exp.solo_base.SOLOExp`` for what
differs (mmdet normalisation, SOLO's schedule).
"""
from mmdet_lite.exp.solo_base import SOLOExp


class Exp(SOLOExp):
    pass

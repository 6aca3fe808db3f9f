"""RT-DETR-R18 fine-tuned on Pascal VOC 2012 from the COCO weights (rtdetr_r18vd_6x_coco).

Model: rtdetr_r18vd_6x_coco with 20 classes. Data: VOC2012 converted to COCO format
(``python tools/voc2coco.py``) under ``datasets/VOCdevkit``. Schedule: miemiedetection's
exps/rtdetr/rtdetr_r18vd_6x_voc2012.py: 16 epochs, evaluation every 2, a 1-epoch linear warmup
from 0.001 x, then a constant LR at the COCO recipe's per-image rate (1e-4 for 16 images).
"""
from mmdet_lite.exp import RTDETRExp
from mmdet_lite.exp.datasets import VOC2012


class Exp(RTDETRExp):
    def __init__(self):
        super().__init__()
        self.set_fields(**VOC2012)

        self.backbone.update(depth=18, freeze_at=-1, freeze_norm=False, norm_decay=0.0)
        self.encoder.update(expansion=0.5, depth_mult=1.0)
        self.decoder.update(num_decoder_layers=3, eval_idx=-1)

        self.max_epoch = 16
        self.eval_interval = 2
        self.snapshot_epoch = 2
        self.print_interval = 20
        self.warmup.update(epochs=1)

"""PicoDet-S 416 fine-tuned on Pascal VOC 2012 from the COCO weights (picodet_s_416_coco_lcnet).

Model: PaddleDetection's picodet_s_416_coco_lcnet.yml with 20 classes. Data: VOC2012 converted to
COCO format (``python tools/voc2coco.py``) under ``datasets/VOCdevkit``. Schedule: miemiedetection's
exps/picodet/picodet_s_416_voc2012.py and its readme_picodet.txt: 16 epochs, evaluation every 2,
1 warmup epoch, cosine over 20 epochs (so the LR never reaches its floor), the static ATSS
assigner for the first 4 epochs only (its readme: ATSS throughout gives 0.464 AP instead of 0.487),
and its per-image LR 0.24 / (4 x 48) at its total batch of 48 on one device: lr 0.06.
"""
from mmdet_lite.exp import PicoDetExp
from mmdet_lite.exp.datasets import VOC2012


class Exp(PicoDetExp):
    def __init__(self):
        super().__init__()
        self.set_fields(**VOC2012)

        self.backbone.update(scale=0.75)
        self.neck.update(out_channels=96)
        self.head["conv_feat"].update(num_convs=2)
        self.head.update(static_assigner_epoch=4)

        self.max_epoch = 16
        self.eval_interval = 2
        self.snapshot_epoch = 2
        self.train_batch_size = 48
        self.ref_num_devices = 1
        self.base_lr = 0.06
        self.lr_decay.update(max_epochs=20)
        self.warmup.update(epochs=1)

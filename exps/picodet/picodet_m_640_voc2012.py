"""PicoDet-M at 640 fine-tuned on Pascal VOC 2012 from the COCO weights (picodet_m_416_coco_lcnet).

Model: the family base (PaddleDetection's picodet_m_416_coco_lcnet.yml architecture) with 20
classes, trained and evaluated at 640 with picodet_640_reader.yml's sizes. Data: VOC2012 converted
to COCO format (``python tools/voc2coco.py``) under ``datasets/VOCdevkit``. Schedule:
miemiedetection's exps/picodet/picodet_m_640_voc2012.py and its readme_picodet.txt: 16 epochs,
evaluation every 2, 1 warmup epoch, cosine over 20 epochs, the static ATSS assigner for the first
4 epochs, and its per-image LR 0.24 / (4 x 48) at its total batch of 24 on one device: lr 0.03.
"""
from mmdet_lite.exp import PicoDetExp
from mmdet_lite.exp.datasets import VOC2012


class Exp(PicoDetExp):
    def __init__(self):
        super().__init__()
        self.set_fields(**VOC2012)

        self.head.update(static_assigner_epoch=4)
        self.input_size = (640, 640)
        self.test_size = (640, 640)
        self.train_sizes = [576, 608, 640, 672, 704]

        self.max_epoch = 16
        self.eval_interval = 2
        self.snapshot_epoch = 2
        self.train_batch_size = 24
        self.ref_num_devices = 1
        self.base_lr = 0.03
        self.lr_decay.update(max_epochs=20)
        self.warmup.update(epochs=1)

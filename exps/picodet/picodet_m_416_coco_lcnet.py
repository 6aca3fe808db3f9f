"""PicoDet-M 416 on COCO: PaddleDetection configs/picodet/picodet_m_416_coco_lcnet.yml."""
from mmdet_lite.exp import PicoDetExp


class Exp(PicoDetExp):
    def __init__(self):
        super().__init__()
        self.max_epoch = 250
        self.train_batch_size = 48
        self.base_lr = 0.24

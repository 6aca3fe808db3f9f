"""PicoDet-L 416 on COCO: PaddleDetection configs/picodet/picodet_l_416_coco_lcnet.yml."""
from mmdet_lite.exp import PicoDetExp


class Exp(PicoDetExp):
    def __init__(self):
        super().__init__()
        self.backbone.update(scale=2.0)
        self.neck.update(out_channels=160)
        self.max_epoch = 250
        self.train_batch_size = 24
        self.base_lr = 0.12

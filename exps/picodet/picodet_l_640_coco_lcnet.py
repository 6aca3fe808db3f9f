"""PicoDet-L 640 on COCO: PaddleDetection configs/picodet/picodet_l_640_coco_lcnet.yml."""
from mmdet_lite.exp import PicoDetExp


class Exp(PicoDetExp):
    def __init__(self):
        super().__init__()
        self.backbone.update(scale=2.0)
        self.neck.update(out_channels=160)
        self.input_size = (640, 640)
        self.test_size = (640, 640)
        self.train_sizes = [576, 608, 640, 672, 704]
        self.max_epoch = 200
        self.train_batch_size = 12
        self.base_lr = 0.06

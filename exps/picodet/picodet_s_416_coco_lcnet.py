"""PicoDet-S 416 on COCO: PaddleDetection configs/picodet/picodet_s_416_coco_lcnet.yml."""
from mmdet_lite.exp import PicoDetExp


class Exp(PicoDetExp):
    def __init__(self):
        super().__init__()
        self.backbone.update(scale=0.75)
        self.neck.update(out_channels=96)
        self.head["conv_feat"].update(num_convs=2)
        self.train_batch_size = 48
        self.base_lr = 0.24

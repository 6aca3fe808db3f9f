"""PicoDet-S 320 on COCO: PaddleDetection configs/picodet/picodet_s_320_coco_lcnet.yml."""
from mmdet_lite.exp import PicoDetExp


class Exp(PicoDetExp):
    def __init__(self):
        super().__init__()
        self.backbone.update(scale=0.75)
        self.neck.update(out_channels=96)
        self.head["conv_feat"].update(num_convs=2)
        self.input_size = (320, 320)
        self.test_size = (320, 320)
        self.train_sizes = [256, 288, 320, 352, 384]

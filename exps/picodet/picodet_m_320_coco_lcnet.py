"""PicoDet-M 320 on COCO: PaddleDetection configs/picodet/picodet_m_320_coco_lcnet.yml."""
from mmdet_lite.exp import PicoDetExp


class Exp(PicoDetExp):
    def __init__(self):
        super().__init__()
        self.input_size = (320, 320)
        self.test_size = (320, 320)
        self.train_sizes = [256, 288, 320, 352, 384]
        self.train_batch_size = 48
        self.base_lr = 0.24

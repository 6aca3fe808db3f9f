"""PicoDet-S 416 for NPUs on COCO: PaddleDetection configs/picodet/picodet_s_416_coco_npu.yml.

ReLU6 everywhere, a CSP-PAN neck, no input normalisation (mean 0, std 1), Mosaic/MixUp + HSV
augmentation for the first 180 epochs, and a cosine schedule with a floor and an exponential warmup.
"""
from mmdet_lite.exp import PicoDetExp


class Exp(PicoDetExp):
    def __init__(self):
        super().__init__()
        self.backbone.update(scale=0.75, act="relu6")
        self.neck.update(name="CSPPAN", out_channels=96, num_csp_blocks=1, act="relu6")
        self.head["conv_feat"].update(act="relu6")
        self.head.update(act="relu6")
        self.pixel_mean = (0.0, 0.0, 0.0)
        self.pixel_std = (1.0, 1.0, 1.0)

        self.train_sizes = [320, 352, 384, 416, 448, 480, 512]
        self.train_transforms = {
            "Mosaic": {"prob": 0.6, "input_dim": [640, 640], "degrees": [-10, 10],
                       "scale": [0.1, 2.0], "shear": [-2, 2], "translate": [-0.1, 0.1],
                       "enable_mixup": True},
            "AugmentHSV": {"is_bgr": False, "hgain": 5, "sgain": 30, "vgain": 30},
            "RandomFlip": {"prob": 0.5},
        }
        self.mosaic_epoch = 180
        self.train_batch_size = 40
        self.base_lr = 0.2
        self.lr_decay.update(min_lr_ratio=0.08, last_plateau_epochs=30)
        self.warmup = dict(name="ExpWarmup", steps=1000, epochs=2, power=2)

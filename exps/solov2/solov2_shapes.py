"""A CPU-sized SOLOv2 trained from scratch on the generated shapes dataset (instance masks).

``python tools/make_shapes_dataset.py --out datasets/shapes`` writes the data (300 train / 100
val images, 5 classes, polygons), then ``OMP_NUM_THREADS=1 python tools/train.py -f
exps/solov2/solov2_shapes.py --device cpu -w 1``.

Model: solov2_r50_fpn_1x_coco's architecture reduced for a 2-core CPU: ResNet-18 variant b with
trainable BatchNorm (no pretrained weights, so the statistics must learn), a 64-channel FPN, two
64-channel convs per tower, 32 kernel / mask-feature channels. Not PaddleDetection's; chosen for
the CPU budget:

- input: keep-ratio Resize to 256 (train and test) instead of 800x1333: the shapes are 16 to
  240 px wide in 320..640 px images. The scale ranges on sqrt(area) follow the same 0.32 factor.
- schedule: batch 8, SGD LR 0.01 (2x Paddle's per-image LR), linear warmup over 50 steps,
  cosine to 0 over ``max_epoch``; 12 epochs of 34 steps (408 steps, 15 to 20 min on one
  shared CPU thread); evaluation and snapshots every 6 epochs.
"""
from mmdet_lite.exp import SOLOv2Exp
from mmdet_lite.exp.datasets import SHAPES


class Exp(SOLOv2Exp):
    def __init__(self):
        super().__init__()
        self.set_fields(**SHAPES)

        self.backbone.update(depth=18, freeze_norm=False)
        self.neck.update(out_channel=64)
        self.head.update(seg_feat_channels=64, stacked_convs=2, kernel_out_channels=32)
        self.mask_head.update(mid_channels=32, out_channels=32)
        self.solov2_targets.update(
            scale_ranges=[[1, 32], [16, 64], [32, 128], [64, 256], [128, 2048]])

        self.input_size = (256, 256)
        self.test_size = (256, 256)
        self.train_transforms = {"Resize": {"interp": 1, "target_size": [256, 256],
                                            "keep_ratio": True},
                                 "RandomFlip": {}}

        self.seed = 0
        self.max_epoch = 12
        self.train_batch_size = 8
        self.ref_num_devices = 1
        self.eval_batch_size = 8
        self.data_num_workers = 2
        self.base_lr = 0.01
        self.lr_decay = dict(name="CosineDecay", max_epochs=None, use_warmup=True)
        self.warmup.update(steps=50, start_factor=0.1)
        self.eval_interval = 6
        self.snapshot_epoch = 6
        self.print_interval = 5

"""A CPU-sized RTMDet trained from scratch on the generated shapes dataset.

``python tools/make_shapes_dataset.py --out datasets/shapes`` writes the data (300 train / 100
val images, 5 classes), then ``OMP_NUM_THREADS=1 python tools/train.py -f
exps/rtmdet/rtmdet_shapes.py --device cpu -w 1``.

Model: RTMDet-tiny's depth (deepen 0.167) at the nano's width (widen 0.25: 64-channel neck and
head), SiLU, channel attention, exp-free regression, mmdet's mean/std on BGR; no pretrained
weights. Not mmdet's recipe; chosen for a 2-core CPU and not yet tuned (a starting point for the
first run, to be revised with the AP it reaches):

- input: 256 (train and test) instead of 640: the shapes are 16 to 240 px wide in 320..640 px
  images, as in the PicoDet and SOLOv2 shapes exps.
- augmentation: mmdet's stage-1 pipeline without CachedMixUp (blended shapes teach little on a
  short schedule), RandomResize ratios 0.5..2 as tiny / s; the plain stage-2 pipeline for the last
  6 epochs.
- schedule: 30 epochs of 37 iterations at batch 8 (1110 steps). AdamW 0.002 at batch 8 (16x
  mmdet's per-image 0.004 / 256: a short schedule from scratch), warm-up over 100 iterations, flat
  to epoch 15 then cosine to 0.05x. EMA as mmdet (ExpMomentumEMA, momentum 0.0002) with gamma 300
  instead of 2000, so that the average starts to lag the weights within the 1110 steps.
- evaluation and snapshots every 6 epochs (every epoch of stage 2 as mmdet).
"""
from mmdet_lite.exp import RTMDetExp
from mmdet_lite.exp.datasets import SHAPES


class Exp(RTMDetExp):
    def __init__(self):
        super().__init__()
        self.set_fields(**SHAPES)

        self.backbone.update(deepen_factor=0.167, widen_factor=0.25)
        self.neck.update(out_channels=64, num_csp_blocks=1)
        self.head.update(feat_channels=64, exp_on_reg=False)

        self.input_size = (256, 256)
        self.test_size = (256, 256)
        del self.train_transforms["CachedMixUp"]
        self.train_transforms["CachedMosaic"].update(max_cached_images=20, random_pop=False)
        self.train_transforms["RandomResize"].update(ratio_range=(0.5, 2.0))
        self.train_transforms_stage2["RandomResize"].update(ratio_range=(0.5, 2.0))
        self.stage2_num_epochs = 6

        self.seed = 0
        self.max_epoch = 30
        self.train_batch_size = 8
        self.ref_num_devices = 1
        self.eval_batch_size = 8
        self.data_num_workers = 2
        self.base_lr = 0.002
        self.warmup.update(end=100)
        self.ema_gamma = 300
        self.eval_interval = 6
        self.snapshot_epoch = 6
        self.print_interval = 10

"""RT-DETR-R18vd (reduced) trained from scratch on the generated shapes dataset, on the CPU.

The RT-DETR training proof: ``python tools/make_shapes_dataset.py --out datasets/shapes`` writes
the data (300 train / 100 val images, 5 classes), then
``OMP_NUM_THREADS=1 python tools/train.py -f exps/rtdetr/rtdetr_r18vd_shapes.py --device cpu -w 1``
(one thread: with other jobs on a 2-core machine, two threads spin-wait and ran ~3x slower).
Its log,
train_coco/rtdetr_r18vd_shapes_cpu.txt: 21 minutes, total loss 22.3 -> 8.4, AP50:95 56.3, AP50 66.5.

Model: PaddleDetection's rtdetr_r18vd_6x_coco.yml (ResNet18-vd, CSP expansion 0.5, 3 decoder
layers) with 5 classes, no pretrained weights, and shrunk for a 2-core CPU: encoder/decoder width
128 (FFN 512), 100 queries (and top detections), 30 denoising queries. Everything below was tuned on
this dataset for a ~20 minute run, not taken from PaddleDetection:

- input: test at 224, train at 192..256 (32 px steps); the shapes are 16 px to half the short
  side of 320..640 px images. ~2.5 s per step at batch 8 on one (shared) CPU core.
- augmentation: RandomFlip only (no RandomDistort, RandomExpand, RandomCrop): a short run.
- schedule: 12 epochs of 34 steps at batch 8 (~400 steps). AdamW at 1e-3 for batch 8 (Paddle: 1e-4
  for 16 images with an ImageNet backbone), the backbone at the full LR (Paddle: 0.1x, for
  pretrained weights), linear warmup over 50 steps from 0.01x, cosine to 0.05x; global gradient
  clipping at 0.1 as Paddle.
- EMA: ``threshold`` decay capped at 0.99 (Paddle's 0.9999 ``exponential`` barely averages in
  400 steps: its decay ramps up over ~2000).
- evaluation every 2 epochs, snapshots every 4.
"""
from mmdet_lite.exp import RTDETRExp
from mmdet_lite.exp.datasets import SHAPES


class Exp(RTDETRExp):
    def __init__(self):
        super().__init__()
        self.set_fields(**SHAPES)

        self.backbone.update(depth=18, freeze_at=-1, freeze_norm=False, norm_decay=0.0,
                             lr_mult_list=[1.0, 1.0, 1.0, 1.0])
        self.encoder.update(hidden_dim=128, expansion=0.5, depth_mult=1.0)
        self.encoder["encoder_layer"].update(d_model=128, dim_feedforward=512)
        self.decoder.update(hidden_dim=128, dim_feedforward=512, num_decoder_layers=3,
                            num_queries=100, num_denoising=30, eval_idx=-1)
        self.num_top_queries = 100

        self.input_size = (224, 224)
        self.test_size = (224, 224)
        self.train_sizes = [192, 224, 256]
        self.train_transforms = {"RandomFlip": {}}

        self.seed = 0
        self.max_epoch = 12
        self.train_batch_size = 8
        self.ref_num_devices = 1
        self.eval_batch_size = 8
        self.data_num_workers = 1
        self.base_lr = 1e-3
        self.lr_decay = dict(name="CosineDecay", max_epochs=None, min_lr_ratio=0.05)
        self.warmup.update(steps=50, start_factor=0.01)
        self.ema_decay_type = "threshold"
        self.ema_decay = 0.99
        self.sync_bn = False
        self.eval_interval = 2
        self.snapshot_epoch = 4
        self.print_interval = 10

"""PP-PicoDet family base exp (LCNet + LCPAN/CSPPAN + PicoHeadV2)."""
import copy

from .base_exp import BaseExp

__all__ = ["PicoDetExp", "NO_WEIGHT_DECAY"]

# Parameters to which ppdet gives their own ``L2Decay(0.0)`` (so the optimizer's L2 factor skips
# them), as our names: BatchNorm of LCNet's ConvBNLayer, of LCPAN's ConvBNLayer blocks (not its
# DPModule / ConvNormLayer convs, not CSPPAN) and of PicoFeat's ConvNormLayer (incl. its SE).
NO_WEIGHT_DECAY = (
    r"^backbone\..*\.bn\.(weight|bias)$",
    r"^neck\.(top_down|bottom_up)_blocks\.\d+\.\d+\.(dw|pw)_conv\.bn\.(weight|bias)$",
    r"^head\.conv_feat\.(cls|reg)_conv_(dw|pw)\.\d+\.\d+\.bn\.(weight|bias)$",
    r"^head\.conv_feat\.se\.\d+\.conv\.bn\.(weight|bias)$",
)


class PicoDetExp(BaseExp):
    """PaddleDetection's PicoDet ``_BASE_`` files deep-merged as Paddle merges them.

    Sources: ``picodet/_base_/picodet_v2.yml`` (model: the PicoDet-M architecture),
    ``_base_/optimizer_300e.yml`` (schedule), ``_base_/picodet_416_reader.yml`` (data),
    ``runtime.yml`` (``log_iter`` -> ``print_interval``) and ``datasets/coco_detection.yml``;
    ``use_ema: true`` and ``snapshot_epoch: 10`` are set by every ``picodet_*.yml``; EMA decay
    and type are ppdet's trainer defaults. Each ``exps/picodet/*.py`` overrides only what its YAML
    changes. Fixed by the family, never configured: assigner/loss/NMS types (ATSSAssigner,
    TaskAlignedAssigner, VarifocalLoss, DistributionFocalLoss, GIoULoss, MultiClassNMS with
    ``normalized=True``), neck ``kernel_size=5``, BatchRandomResize with random interpolation.

    Derived when the model is built (see ``head_config``): ``conv_feat.feat_in`` =
    ``neck.out_channels``; ``conv_feat.feat_out`` = ``neck.out_channels`` while it is ``None``;
    ``feat_in_chan`` = ``conv_feat.feat_out``. The test transform reads ``test_size`` when built.

    Schedule: ``base_lr`` is Paddle's LR for the total batch ``train_batch_size * ref_num_devices``
    (``train_batch_size`` is Paddle's per-device ``TrainReader.batch_size``; PicoDet's schedules
    were made on 4 GPUs); a trainer scales it linearly to its own total batch (``lr_per_image``).
    ``lr_decay`` / ``warmup`` mirror Paddle's ``LearningRate.schedulers`` (``lr_decay.max_epochs``
    ``None`` follows ``max_epoch``); ``weight_decay`` is the L2 regulariser factor.
    """

    def __init__(self):
        super().__init__()
        # ---------------- model (picodet_v2.yml) ----------------
        self.backbone = dict(scale=1.5, feature_maps=[3, 4, 5], act="hard_swish")
        self.neck = dict(name="LCPAN", out_channels=128, use_depthwise=True, num_features=4,
                         act="hard_swish")
        self.head = dict(
            conv_feat=dict(feat_out=None, num_convs=4, num_fpn_stride=4, norm_type="bn",
                           share_cls_reg=True, use_se=True, act="hard_swish"),
            fpn_stride=[8, 16, 32, 64],
            prior_prob=0.01,
            reg_max=7,
            cell_offset=0.5,
            grid_cell_scale=5.0,
            static_assigner_epoch=100,
            use_align_head=True,
            act="hard_swish",
            static_assigner=dict(topk=9, force_gt_matching=False),
            assigner=dict(topk=13, alpha=1.0, beta=6.0),
            loss_class=dict(use_sigmoid=False, iou_weighted=True, alpha=0.75, gamma=2.0,
                            loss_weight=1.0),
            loss_dfl=dict(loss_weight=0.5),
            loss_bbox=dict(loss_weight=2.5),
            nms=dict(score_threshold=0.025, nms_top_k=1000, keep_top_k=100, nms_threshold=0.6),
        )
        self.pixel_mean = (0.485, 0.456, 0.406)  # NormalizeImage, RGB, on 0..1 pixels
        self.pixel_std = (0.229, 0.224, 0.225)

        # ---------------- data (picodet_416_reader.yml) ----------------
        self.input_size = (416, 416)
        self.test_size = (416, 416)
        self.train_sizes = [352, 384, 416, 448, 480]  # BatchRandomResize target_size
        self.train_transforms = {"RandomCrop": {}, "RandomFlip": {"prob": 0.5}, "RandomDistort": {}}
        self.train_batch_size = 64
        self.eval_batch_size = 8
        self.data_num_workers = 6  # worker_num

        # ---------------- schedule (optimizer_300e.yml) ----------------
        self.max_epoch = 300
        self.base_lr = 0.32
        self.ref_num_devices = 4
        self.momentum = 0.9
        self.weight_decay = 4e-5
        self.lr_decay = dict(name="CosineDecay", max_epochs=300, min_lr_ratio=0.0,
                             last_plateau_epochs=0)
        self.warmup = dict(name="LinearWarmup", steps=300, start_factor=0.1, epochs=None)
        self.use_ema = True
        self.ema_decay = 0.9998
        self.ema_decay_type = "threshold"
        self.snapshot_epoch = 10
        self.eval_interval = 10
        self.print_interval = 20
        self.find_unused_parameters = True

    @property
    def lr_per_image(self):
        """``base_lr`` divided by the total batch it was tuned for."""
        return self.base_lr / (self.train_batch_size * self.ref_num_devices)

    def head_config(self):
        """``head`` with the derived channel counts filled in (a deep copy)."""
        head = copy.deepcopy(self.head)
        conv_feat = head["conv_feat"]
        conv_feat["feat_in"] = self.neck["out_channels"]
        if conv_feat.get("feat_out") is None:
            conv_feat["feat_out"] = self.neck["out_channels"]
        head["feat_in_chan"] = conv_feat["feat_out"]
        return head

    def _nms(self):
        """The live ``head.nms`` dict (created empty if the field holds none)."""
        if not isinstance(self.head.get("nms"), dict):
            self.head["nms"] = {}
        return self.head["nms"]

    def get_score_threshold(self):
        """``head.nms.score_threshold`` (the head's default if unset): NMS keeps scores above."""
        from mmdet_lite.models.heads.pico_head_v2 import DEFAULT_NMS

        nms = self.head.get("nms")
        return {**DEFAULT_NMS, **(nms if isinstance(nms, dict) else {})}["score_threshold"]

    def set_score_threshold(self, value):
        self._nms()["score_threshold"] = float(value)

    def set_nms_threshold(self, value):
        """``head.nms.nms_threshold``: MultiClassNMS's IoU threshold."""
        self._nms()["nms_threshold"] = float(value)

    def get_model(self):
        from mmdet_lite.models.architectures.picodet import build_picodet

        return build_picodet(num_classes=self.num_classes, backbone=copy.deepcopy(self.backbone),
                             neck=copy.deepcopy(self.neck), head=self.head_config(),
                             pixel_mean=tuple(self.pixel_mean), pixel_std=tuple(self.pixel_std))

    def get_optimizer(self, model):
        """ppdet's ``OptimizerBuilder`` of ``optimizer_300e.yml``: ``Momentum(momentum)`` with
        ``L2Decay(weight_decay)``, none on the parameters of ``NO_WEIGHT_DECAY``."""
        from mmdet_lite.solver import build_sgd

        return build_sgd(model, self.base_lr, self.momentum, self.weight_decay, NO_WEIGHT_DECAY)

    def get_lr_scheduler(self, iters_per_epoch, batch_size=None):
        """ppdet's ``LearningRate`` per iteration, scaled to a total batch of ``batch_size``."""
        from mmdet_lite.solver import build_lr_scheduler

        return build_lr_scheduler(self, iters_per_epoch, batch_size)

    @property
    def convert_rules(self):
        from mmdet_lite.convert.picodet_rules import PICODET_RULES

        return PICODET_RULES

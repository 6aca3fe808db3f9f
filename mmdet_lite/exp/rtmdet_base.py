"""RTMDet family base exp (CSPNeXt + CSPNeXtPAFPN + RTMDetSepBNHead), mmdet 3.3.0's recipe."""
import copy
import re

from mmdet_lite.utils.errors import UserError

from .base_exp import BaseExp

__all__ = ["RTMDetExp", "MMDET_MEAN", "MMDET_STD", "norm_and_bias_patterns"]

MMDET_MEAN = (103.53, 116.28, 123.675)  # DetDataPreprocessor, BGR order, on 0..255 pixels
MMDET_STD = (57.375, 57.12, 58.395)
SIZE_KEYS = ("img_scale", "scale", "crop_size", "size")


def norm_and_bias_patterns(model):
    """Regexes naming exactly the parameters that mmengine's ``paramwise_cfg(norm_decay_mult=0,
    bias_decay_mult=0)`` leaves undecayed: those of normalisation layers and every bias."""
    import torch.nn as nn

    norms = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm,
             nn.modules.instancenorm._InstanceNorm)
    names = set()
    for module_name, module in model.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            if isinstance(module, norms) or param_name == "bias":
                names.add(f"{module_name}.{param_name}" if module_name else param_name)
    return [f"^{re.escape(name)}$" for name in sorted(names)]


def resolve_sizes(transforms, input_size):
    """``{name: kwargs}`` with every size argument (``SIZE_KEYS``) given as a multiple of
    ``input_size`` (a number) replaced by ``(h, w)`` ints; explicit pairs stay (a deep copy)."""
    resolved = copy.deepcopy(transforms)
    for kwargs in resolved.values():
        for key in SIZE_KEYS:
            if isinstance(kwargs.get(key), (int, float)):
                kwargs[key] = tuple(int(round(s * kwargs[key])) for s in input_size)
    return resolved


class RTMDetExp(BaseExp):
    """mmdet 3.3.0's ``configs/rtmdet/rtmdet_l_8xb32-300e_coco.py`` with its ``_base_`` files
    (default_runtime, schedule_1x, coco_detection) merged as mmengine merges them; each
    ``exps/rtmdet/*.py`` overrides only what its config changes.

    Model sub-configs (``build_rtmdet`` kwargs): ``backbone`` (CSPNeXt), ``neck``
    (CSPNeXtPAFPN; ``in_channels`` derived from the backbone), ``head`` (RTMDetSepBNHead;
    ``in_channels`` = ``neck.out_channels``, derived), ``loss`` (RTMDetLoss: DynamicSoftLabel
    assigner, QualityFocalLoss, GIoULoss), ``test_cfg`` (mmdet's ``model.test_cfg``). BatchNorm is
    PyTorch's default (eps 1e-5, momentum 0.1): mmdet's configs set ``norm_cfg=dict(type='SyncBN')``
    without eps/momentum, which replaces the classes' 1e-3 / 0.03 defaults. Input: 0..255 RGB;
    ``channel_order`` ``"bgr"`` flips it to BGR before ``pixel_mean`` / ``pixel_std`` (in that
    order), as mmdet's ``DetDataPreprocessor(bgr_to_rgb=False)`` sees cv2's BGR images.

    Data: ``train_transforms`` / ``train_transforms_stage2`` are mmdet's ``train_pipeline`` /
    ``train_pipeline_stage2`` between ``LoadAnnotations`` and ``PackDetInputs`` ({mmdet name:
    kwargs}, in order); size arguments are multiples of ``input_size`` (``2`` -> (2h, 2w)) or
    explicit ``(h, w)``, resolved by ``train_pipeline(stage2)`` so that ``input_size 192 192``
    reaches every transform. ``PipelineSwitchHook`` switches to stage 2 for the last
    ``stage2_num_epochs`` epochs, when evaluation runs every ``stage2_eval_interval`` epochs
    (``train_cfg.dynamic_intervals``). Test: keep-ratio ``Resize`` to ``test_size``, ``Pad`` to it
    with ``pad_val``.

    Schedule: ``base_lr`` is mmdet's LR for the total batch ``train_batch_size * ref_num_devices``
    (8 GPUs x 32), scaled linearly by the trainer to its own total batch (``lr_per_image``; the
    project's rule: mmdet's ``auto_scale_lr`` is off, so mmdet keeps 0.004 at any batch). AdamW
    (torch's betas/eps) with ``weight_decay``, none on norms and biases
    (``norm_and_bias_patterns``). ``warmup``:
    mmengine's ``LinearLR(start_factor, by_epoch=False, begin=0, end)``; ``lr_decay``: mmengine's
    ``CosineAnnealingLR`` from epoch ``max_epochs // 2`` to ``max_epochs`` (flat before it) down to
    ``min_lr_ratio * base_lr``; ``max_epochs`` ``None`` follows ``max_epoch``. EMA: mmdet's
    ``ExpMomentumEMA(momentum=ema_momentum, gamma=ema_gamma)``, buffers included. Checkpoints every
    ``snapshot_epoch`` epochs, the last ``max_keep_ckpts`` kept.
    """

    convert_source_kinds = ("torch",)

    def __init__(self):
        super().__init__()
        # ---------------- model (rtmdet_l_8xb32-300e_coco.py) ----------------
        self.backbone = dict(name="CSPNeXt", arch="P5", deepen_factor=1.0, widen_factor=1.0,
                             expand_ratio=0.5, channel_attention=True,
                             spp_kernel_sizes=(5, 9, 13), split_max_pool=False, act="silu")
        self.neck = dict(name="CSPNeXtPAFPN", out_channels=256, num_csp_blocks=3,
                         expand_ratio=0.5, act="silu")
        self.head = dict(feat_channels=256, stacked_convs=2, share_conv=True, pred_kernel_size=1,
                         exp_on_reg=True, strides=(8, 16, 32), act="silu")
        self.loss = dict(name="RTMDetLoss",
                         assigner=dict(topk=13, iou_weight=3.0, soft_center_radius=3.0),
                         loss_cls=dict(beta=2.0, loss_weight=1.0),
                         loss_bbox=dict(loss_weight=2.0))
        self.test_cfg = dict(nms_pre=30000, min_bbox_size=0, score_thr=0.001, iou_threshold=0.65,
                             max_per_img=300)
        self.pixel_mean = MMDET_MEAN
        self.pixel_std = MMDET_STD
        self.channel_order = "bgr"

        # ---------------- data (train_pipeline, test_pipeline, dataloaders) ----------------
        self.input_size = (640, 640)
        self.test_size = (640, 640)
        self.train_transforms = {
            "CachedMosaic": dict(img_scale=1, pad_val=114.0, max_cached_images=40,
                                 random_pop=True, prob=1.0),
            "RandomResize": dict(scale=2, ratio_range=(0.1, 2.0), keep_ratio=True),
            "RandomCrop": dict(crop_size=1),
            "YOLOXHSVRandomAug": dict(hue_delta=5, saturation_delta=30, value_delta=30),
            "RandomFlip": dict(prob=0.5),
            "Pad": dict(size=1, pad_val=dict(img=(114, 114, 114))),
            "CachedMixUp": dict(img_scale=1, ratio_range=(1.0, 1.0), max_cached_images=20,
                                random_pop=True, pad_val=(114, 114, 114), prob=1.0),
        }
        self.train_transforms_stage2 = {
            "RandomResize": dict(scale=1, ratio_range=(0.1, 2.0), keep_ratio=True),
            "RandomCrop": dict(crop_size=1),
            "YOLOXHSVRandomAug": dict(hue_delta=5, saturation_delta=30, value_delta=30),
            "RandomFlip": dict(prob=0.5),
            "Pad": dict(size=1, pad_val=dict(img=(114, 114, 114))),
        }
        self.stage2_num_epochs = 20
        self.stage2_eval_interval = 1
        self.pad_val = 114
        self.train_batch_size = 32
        self.eval_batch_size = 5
        self.data_num_workers = 10

        # ---------------- schedule (optim_wrapper, param_scheduler, hooks) ----------------
        self.max_epoch = 300
        self.base_lr = 0.004
        self.ref_num_devices = 8
        self.weight_decay = 0.05
        self.adamw_betas = (0.9, 0.999)
        self.adamw_eps = 1e-8
        self.warmup = dict(name="LinearLR", start_factor=1e-5, end=1000)
        self.lr_decay = dict(name="FlatCosineDecay", max_epochs=None, min_lr_ratio=0.05)
        self.use_ema = True
        self.ema_decay_type = "exp_momentum"
        self.ema_momentum = 0.0002
        self.ema_gamma = 2000
        self.snapshot_epoch = 10
        self.max_keep_ckpts = 3
        self.eval_interval = 10
        self.print_interval = 50

    @property
    def lr_per_image(self):
        """``base_lr`` divided by the total batch it was tuned for."""
        return self.base_lr / (self.train_batch_size * self.ref_num_devices)

    # ------------------------------------------------------------------ data
    def train_pipeline(self, stage2=False):
        """``train_transforms`` (or ``train_transforms_stage2``) with sizes resolved to
        ``(h, w)`` from ``input_size``; ``UserError`` unless it is a multiple of the largest
        stride (the neck joins the levels by 2x upsampling)."""
        stride = max(self.head["strides"])
        if any(int(s) % stride for s in self.input_size):
            raise UserError(f"{self.exp_name}: input_size {tuple(self.input_size)} must be "
                            f"multiples of {stride} (RTMDet's largest stride)")
        transforms = self.train_transforms_stage2 if stage2 else self.train_transforms
        return resolve_sizes(transforms, tuple(self.input_size))

    @property
    def stage2_epoch(self):
        """The first epoch (0-based) of the stage-2 pipeline: ``max_epoch - stage2_num_epochs``."""
        return self.max_epoch - self.stage2_num_epochs

    def sample_transforms(self, stage2=False):
        from mmdet_lite.data.build import build_sample_transforms

        return build_sample_transforms(self.train_pipeline(stage2), self.exp_name,
                                       dict(self.transform_aliases))

    def get_test_transform(self):
        """mmdet's test ``Resize(scale=test_size, keep_ratio=True)`` (bilinear) of the BGR image
        (RGB out: the model flips it back when ``channel_order`` is ``"bgr"``)."""
        import cv2

        from mmdet_lite.data.geometric import TestTransform

        return TestTransform(tuple(self.test_size), interp=cv2.INTER_LINEAR, keep_ratio=True)

    # ------------------------------------------------------------------ post-processing
    def get_score_threshold(self):
        """``test_cfg.score_thr``: scores at or below it are no candidates."""
        return float(self.test_cfg["score_thr"])

    def set_score_threshold(self, value):
        self.test_cfg["score_thr"] = float(value)

    def set_nms_threshold(self, value):
        """``test_cfg.iou_threshold``: the IoU of mmdet's ``nms`` (batched over classes)."""
        self.test_cfg["iou_threshold"] = float(value)

    # ------------------------------------------------------------------ builders
    def get_model(self):
        from mmdet_lite.models.architectures.rtmdet import build_rtmdet

        return build_rtmdet(num_classes=self.num_classes, backbone=copy.deepcopy(self.backbone),
                            neck=copy.deepcopy(self.neck), head=copy.deepcopy(self.head),
                            loss=copy.deepcopy(self.loss), test_cfg=copy.deepcopy(self.test_cfg),
                            pixel_mean=tuple(self.pixel_mean), pixel_std=tuple(self.pixel_std),
                            channel_order=self.channel_order)

    def get_optimizer(self, model):
        """mmengine's ``AdamW(lr, weight_decay)`` with ``norm_decay_mult=0, bias_decay_mult=0``."""
        from mmdet_lite.solver import build_adamw

        return build_adamw(model, self.base_lr, self.weight_decay, norm_and_bias_patterns(model),
                           betas=tuple(self.adamw_betas), eps=self.adamw_eps)

    def lr_decay_config(self):
        """``lr_decay`` with ``max_epochs`` ``None`` resolved to ``max_epoch`` (a copy)."""
        decay = dict(self.lr_decay)
        if decay.get("max_epochs") is None:
            decay["max_epochs"] = self.max_epoch
        return decay

    def get_lr_scheduler(self, iters_per_epoch, batch_size=None):
        """Warm-up then flat-cosine per iteration, scaled to a total batch of ``batch_size``."""
        from mmdet_lite.solver import build_learning_rate, scaled_base_lr

        return build_learning_rate(scaled_base_lr(self, batch_size), self.lr_decay_config(),
                                   self.warmup, iters_per_epoch, owner=self.exp_name)

    @property
    def convert_rules(self):
        from mmdet_lite.convert.rtmdet_rules import RTMDET_RULES

        return RTMDET_RULES

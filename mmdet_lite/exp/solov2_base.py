"""SOLOv2 family base exp (ResNet + FPN + SOLOv2Head + SOLOv2MaskHead)."""
import copy
import functools

from mmdet_lite.utils.errors import UserError

from .base_exp import BaseExp

__all__ = ["SOLOv2Exp", "MULTI_SCALE_3X"]

MULTI_SCALE_3X = [[640, 1333], [672, 1333], [704, 1333], [736, 1333], [768, 1333], [800, 1333]]
"""The ``RandomResize`` sizes of the 3x configs (short side 640..800, long side 1333)."""


class SOLOv2Exp(BaseExp):
    """PaddleDetection's ``solov2/_base_`` files deep-merged as Paddle merges them: the model of
    ``solov2_r50_fpn.yml`` (ResNet-50 variant b, FPN, the heads, ``SOLOv2Loss``,
    ``MaskMatrixNMS``), ``optimizer_1x.yml``, ``solov2_reader.yml``, ``runtime.yml`` and
    ``datasets/coco_instance.yml``, i.e. ``solov2_r50_fpn_1x_coco``. Each ``exps/solov2/*.py``
    overrides only what its YAML changes.

    Model sub-configs (``build_solov2`` kwargs, Paddle's section arguments): ``backbone``
    (``name`` ResNet and its kwargs), ``neck`` (``name`` FPN; ``in_channels`` from the
    backbone), ``head`` (SOLOv2Head: towers, grids, post-processing thresholds), ``mask_head``
    (SOLOv2MaskHead), ``loss`` (SOLOv2Loss), ``mask_nms`` (MaskMatrixNMS). Fixed by the family:
    GroupNorm heads (Paddle's shared ``norm_type: gn``), ``solo_cate``'s prior 0.01, DropBlock
    (3, 0.9); derived: both heads' ``in_channels`` (the neck's), ``num_classes``.

    Data: ``train_transforms`` are ppdet's ``sample_transforms`` after ``Decode`` and
    ``Poly2Mask`` (masks are decoded with the annotations, ``train_with_masks``), before
    ``NormalizeImage``; the batch transforms are ``PadBatch(pad_to_stride)`` and
    ``Gt2Solov2Target(**solov2_targets)``. ``test_size`` is the EvalReader's keep-ratio
    ``Resize`` target (interp 1, linear); eval batches are padded to ``pad_to_stride`` with
    the mean colour (``get_eval_collate``).
    Schedule: ``base_lr`` is Paddle's LR for the total batch ``train_batch_size *
    ref_num_devices`` (2 x 8 GPUs), scaled linearly by the trainer; Momentum with the L2
    regulariser ``weight_decay``, none on the GroupNorm affine and on the DCN biases (which
    learn at 2x LR), as the modules declare (``no_weight_decay()`` / ``param_lr_mults()``).
    """

    train_with_masks = True

    def __init__(self):
        super().__init__()
        # ---------------- model (solov2_r50_fpn.yml) ----------------
        self.backbone = dict(name="ResNet", depth=50, variant="b", freeze_at=0, freeze_norm=True,
                             norm_type="bn", norm_decay=0.0, return_idx=[0, 1, 2, 3],
                             num_stages=4, dcn_v2_stages=[-1], lr_mult_list=[1.0, 1.0, 1.0, 1.0])
        self.neck = dict(name="FPN", out_channel=256,
                         spatial_scales=[0.25, 0.125, 0.0625, 0.03125], has_extra_convs=False,
                         extra_stage=1, norm_type=None)
        self.head = dict(seg_feat_channels=512, stacked_convs=4, num_grids=[40, 36, 24, 16, 12],
                         kernel_out_channels=256, dcn_v2_stages=[], segm_strides=[8, 8, 16, 32, 32],
                         score_threshold=0.1, mask_threshold=0.5, drop_block=False)
        self.mask_head = dict(mid_channels=128, out_channels=256, start_level=0, end_level=3,
                              use_dcn_in_tower=False)
        self.loss = dict(name="SOLOv2Loss", ins_loss_weight=3.0, focal_loss_gamma=2.0,
                         focal_loss_alpha=0.25)
        self.mask_nms = dict(update_threshold=0.05, pre_nms_top_n=500, post_nms_top_n=100,
                             kernel="gaussian", sigma=2.0)
        self.pixel_mean = (0.485, 0.456, 0.406)  # NormalizeImage, RGB, on 0..1 pixels
        self.pixel_std = (0.229, 0.224, 0.225)

        # ---------------- data (solov2_reader.yml) ----------------
        self.input_size = (800, 1333)
        self.test_size = (800, 1333)
        self.train_transforms = {"Resize": {"interp": 1, "target_size": [800, 1333],
                                            "keep_ratio": True},
                                 "RandomFlip": {}}
        self.pad_to_stride = 32
        self.solov2_targets = dict(
            num_grids=[40, 36, 24, 16, 12],
            scale_ranges=[[1, 96], [48, 192], [96, 384], [192, 768], [384, 2048]],
            coord_sigma=0.2)
        self.train_batch_size = 2
        self.eval_batch_size = 1
        self.data_num_workers = 8

        # ---------------- schedule (optimizer_1x.yml, runtime.yml) ----------------
        self.max_epoch = 12
        self.base_lr = 0.01
        self.ref_num_devices = 8
        self.momentum = 0.9
        self.weight_decay = 1e-4
        self.lr_decay = dict(name="PiecewiseDecay", gamma=0.1, milestones=[8, 11], use_warmup=True)
        self.warmup = dict(name="LinearWarmup", steps=1000, start_factor=0.0, epochs=None)
        self.snapshot_epoch = 1
        self.eval_interval = 1
        self.print_interval = 20

    @property
    def lr_per_image(self):
        """``base_lr`` divided by the total batch it was tuned for."""
        return self.base_lr / (self.train_batch_size * self.ref_num_devices)

    # ------------------------------------------------------------------ post-processing
    def get_score_threshold(self):
        """``head.score_threshold``: category scores at or below it are no candidates."""
        return float(self.head.get("score_threshold", 0.1))

    def set_score_threshold(self, value):
        """``--conf`` / ``Predictor(conf=)`` as for the box families: returned instances score
        at least ``value``. Sets the candidate threshold ``head.score_threshold`` and Matrix
        NMS's ``mask_nms.update_threshold`` (the minimum decayed score) to ``value``; a final
        score never exceeds its category score, so no instance scoring ``value`` is lost."""
        self.head["score_threshold"] = float(value)
        self.mask_nms["update_threshold"] = float(value)

    def set_nms_threshold(self, value):
        raise UserError(f"{self.exp_name}: Matrix NMS has no IoU threshold (it decays scores; "
                        "set mask_nms.update_threshold to change what it keeps)")

    # ------------------------------------------------------------------ builders
    def get_model(self):
        from mmdet_lite.models.architectures.solov2 import build_solov2

        return build_solov2(num_classes=self.num_classes, backbone=copy.deepcopy(self.backbone),
                            neck=copy.deepcopy(self.neck), head=copy.deepcopy(self.head),
                            mask_head=copy.deepcopy(self.mask_head), loss=copy.deepcopy(self.loss),
                            mask_nms=copy.deepcopy(self.mask_nms),
                            pixel_mean=tuple(self.pixel_mean), pixel_std=tuple(self.pixel_std))

    def get_optimizer(self, model):
        """ppdet's ``OptimizerBuilder`` of ``optimizer_1x.yml``: ``Momentum(momentum)`` with
        ``L2Decay(weight_decay)``, none where the modules declare ``L2Decay(0)``."""
        from mmdet_lite.solver import build_sgd

        return build_sgd(model, self.base_lr, self.momentum, self.weight_decay)

    def get_lr_scheduler(self, iters_per_epoch, batch_size=None):
        """ppdet's ``LearningRate`` per iteration, scaled to a total batch of ``batch_size``."""
        from mmdet_lite.solver import build_lr_scheduler

        return build_lr_scheduler(self, iters_per_epoch, batch_size)

    def get_train_loader(self, batch_size, num_workers, rank=0, world_size=1, seed=0):
        """SOLOv2's TrainReader: the sample transforms, then ``PadBatch`` and
        ``Gt2Solov2Target`` in the loader workers (batches: ``images`` uint8, the padded
        ``gt_*`` and ``ins_label{l}`` / ``cate_label{l}`` / ``grid_order{l}`` / ``fg_num``)."""
        from mmdet_lite.data.collate import TrainCollate
        from mmdet_lite.data.resize import PadBatch
        from mmdet_lite.data.solov2_targets import Gt2Solov2Target
        from mmdet_lite.data.train_loader import build_train_loader

        collate = TrainCollate(PadBatch(self.pad_to_stride),
                               targets=Gt2Solov2Target(**self.solov2_targets))
        return build_train_loader(self.get_train_dataset(), batch_size, num_workers, seed,
                                  rank=rank, world_size=world_size,
                                  sample_transforms=self.sample_transforms(),
                                  mosaic_epoch=self.mosaic_epoch, collate_fn=collate,
                                  with_masks=True, skip_unreadable=self.skip_bad_images)

    def get_test_transform(self):
        from mmdet_lite.data.geometric import TestTransform

        return TestTransform(tuple(self.test_size), interp=1, keep_ratio=True)

    def get_eval_collate(self):
        """ppdet's EvalReader ``PadBatch(pad_to_stride)``, which pads after ``NormalizeImage``:
        float32 batches padded with the mean colour ``255 * pixel_mean`` (0 once normalised)."""
        from mmdet_lite.data.loader import eval_collate

        return functools.partial(eval_collate, pad_to_stride=self.pad_to_stride,
                                 pad_value=tuple(255.0 * m for m in self.pixel_mean))

    @property
    def convert_rules(self):
        from mmdet_lite.convert.solov2_rules import SOLOV2_RULES

        return SOLOV2_RULES

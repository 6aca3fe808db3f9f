"""RT-DETR family base exp (ResNet-vd / PP-HGNetV2 + HybridEncoder + RTDETRTransformer)."""
import copy

from mmdet_lite.utils.errors import UserError

from .base_exp import BaseExp

__all__ = ["RTDETRExp"]


class RTDETRExp(BaseExp):
    """PaddleDetection's ``rtdetr/_base_`` files deep-merged as Paddle merges them: the model of
    ``rtdetr_r50vd.yml`` (RT-DETR-R50), ``optimizer_6x.yml``, ``rtdetr_reader.yml``, ``runtime.yml``
    and ``datasets/coco_detection.yml``; ``log_iter: 200`` and ``find_unused_parameters`` are set by
    every ``rtdetr_*.yml``. Each ``exps/rtdetr/*.py`` overrides only what its YAML changes.

    Model sub-configs (``build_rtdetr`` kwargs): ``backbone`` (``name`` ResNet | PPHGNetV2 and
    its kwargs), ``encoder`` (HybridEncoder; ``in_channels`` come from the backbone), ``decoder``
    (RTDETRTransformer; ``num_classes`` and the input channels are derived), ``loss`` (DINOLoss:
    ``loss_coeff``, ``aux_loss``, ``use_vfl``, ``matcher.matcher_coeff``), ``num_top_queries``
    (DETRPostProcess). Fixed by the family: focal-style classification (``use_focal_loss``), the
    encoder/decoder ``eval_size`` (= ``test_size``, derived).

    Data: ``train_transforms`` are ppdet develop's ``sample_transforms`` after ``Decode`` (its
    ``RandomDistort`` is ``PILRandomDistort``); ``train_sizes`` the BatchRandomResize sizes;
    boxes reach the loss as normalised cxcywh (``NormalizeBox`` + ``BboxXYXY2XYWH``).
    Schedule: ``base_lr`` is Paddle's LR for the total batch ``train_batch_size *
    ref_num_devices`` (4 x 4 GPUs), scaled linearly by the trainer; ``lr_decay`` / ``warmup``
    mirror ``LearningRate.schedulers``; AdamW with ``weight_decay`` on every trainable parameter
    except names matching ``no_weight_decay`` regexes (Paddle: none); ``clip_grad_norm`` global.
    """

    train_box_format = "cxcywh"
    transform_aliases = (("RandomDistort", "PILRandomDistort"),)

    def __init__(self):
        super().__init__()
        # ---------------- model (rtdetr_r50vd.yml) ----------------
        self.backbone = dict(name="ResNet", depth=50, variant="d", norm_type="bn", freeze_at=0,
                             freeze_norm=True, freeze_stem_only=True, return_idx=[1, 2, 3],
                             lr_mult_list=[0.1, 0.1, 0.1, 0.1], num_stages=4, norm_decay=0.0)
        self.encoder = dict(
            hidden_dim=256, feat_strides=[8, 16, 32], use_encoder_idx=[2], num_encoder_layers=1,
            encoder_layer=dict(name="TransformerLayer", d_model=256, nhead=8, dim_feedforward=1024,
                               dropout=0.0, activation="gelu", attn_dropout=None,
                               act_dropout=None, normalize_before=False),
            pe_temperature=10000, expansion=1.0, depth_mult=1.0, act="silu")
        self.decoder = dict(
            hidden_dim=256, num_queries=300, position_embed_type="sine", feat_strides=[8, 16, 32],
            num_levels=3, num_decoder_points=4, nhead=8, num_decoder_layers=6,
            dim_feedforward=1024, dropout=0.0, activation="relu", num_denoising=100,
            label_noise_ratio=0.5, box_noise_scale=1.0, learnt_init_query=False,
            query_pos_head_inv_sig=False, eval_idx=-1, eps=1e-2)
        self.loss = dict(name="DETRLoss", loss_coeff={"class": 1, "bbox": 5, "giou": 2},
                         aux_loss=True, use_vfl=True,
                         matcher=dict(name="HungarianMatcher",
                                      matcher_coeff={"class": 2, "bbox": 5, "giou": 2}))
        self.num_top_queries = 300
        self.pixel_mean = (0.0, 0.0, 0.0)  # NormalizeImage on 0..1 pixels: x / 255 only
        self.pixel_std = (1.0, 1.0, 1.0)

        # ---------------- data (rtdetr_reader.yml) ----------------
        self.input_size = (640, 640)
        self.test_size = (640, 640)
        self.train_sizes = [480, 512, 544, 576, 608, 640, 640, 640, 672, 704, 736, 768, 800]
        self.train_transforms = {"RandomDistort": {"prob": 0.8},
                                 "RandomExpand": {"fill_value": [123.675, 116.28, 103.53]},
                                 "RandomCrop": {"prob": 0.8}, "RandomFlip": {}}
        self.train_batch_size = 4
        self.eval_batch_size = 4
        self.data_num_workers = 4

        # ---------------- schedule (optimizer_6x.yml, runtime) ----------------
        self.max_epoch = 72
        self.base_lr = 1e-4
        self.ref_num_devices = 4
        self.weight_decay = 1e-4
        self.no_weight_decay = []
        self.clip_grad_norm = 0.1
        self.lr_decay = dict(name="PiecewiseDecay", gamma=1.0, milestones=[100], use_warmup=True)
        self.warmup = dict(name="LinearWarmup", steps=2000, start_factor=0.001, epochs=None)
        self.use_ema = True
        self.ema_decay = 0.9999
        self.ema_decay_type = "exponential"
        self.ema_filter_no_grad = True
        self.sync_bn = True  # norm_type: sync_bn (multi-GPU only)
        self.snapshot_epoch = 1
        self.eval_interval = 1
        self.print_interval = 200
        self.find_unused_parameters = True

    def loss_config(self):
        """``loss`` for ``build_rtdetr``: a deep copy whose ``matcher`` is the matcher module."""
        from mmdet_lite.models.assigners.hungarian_matcher import HungarianMatcher

        loss = copy.deepcopy(self.loss)
        matcher = dict(loss.pop("matcher", None) or {})
        if matcher.pop("name", "HungarianMatcher") != "HungarianMatcher":
            raise UserError(f"{self.exp_name}: loss.matcher.name must be HungarianMatcher")
        loss["matcher"] = HungarianMatcher(use_focal_loss=True, **matcher)
        return loss

    def get_model(self):
        from mmdet_lite.models.architectures.rtdetr import build_rtdetr

        eval_size = list(self.test_size)
        return build_rtdetr(num_classes=self.num_classes, backbone=copy.deepcopy(self.backbone),
                            encoder=dict(copy.deepcopy(self.encoder), eval_size=eval_size),
                            decoder=dict(copy.deepcopy(self.decoder), eval_size=eval_size),
                            loss=self.loss_config(), pixel_mean=tuple(self.pixel_mean),
                            pixel_std=tuple(self.pixel_std), num_top_queries=self.num_top_queries)

    def get_optimizer(self, model):
        """ppdet's ``OptimizerBuilder`` of ``optimizer_6x.yml``: ``AdamW(weight_decay)`` with
        ``regularizer: false`` and no ``param_groups``, so Paddle applies AdamW's decoupled decay
        to every trainable parameter (norms and embeddings included: the ``L2Decay(0.0)`` that
        ppdet's modules put on their norms is an L2 regulariser term and does not switch AdamW's
        decay off), here except names matching ``no_weight_decay``. The backbones' stage LR
        multipliers are their ``param_lr_mults()``; ``clip_grad_by_norm`` is ``clip_grad_norm``,
        which the trainer applies after unscaling (Paddle: ``ClipGradByGlobalNorm``)."""
        from mmdet_lite.solver import build_adamw

        return build_adamw(model, self.base_lr, self.weight_decay, self.no_weight_decay)

    def get_lr_scheduler(self, iters_per_epoch, batch_size=None):
        """ppdet's ``LearningRate`` per iteration, scaled to a total batch of ``batch_size``."""
        from mmdet_lite.solver import build_lr_scheduler

        return build_lr_scheduler(self, iters_per_epoch, batch_size)

    @property
    def convert_rules(self):
        from mmdet_lite.convert.rtdetr_rules import RTDETR_RULES

        return RTDETR_RULES

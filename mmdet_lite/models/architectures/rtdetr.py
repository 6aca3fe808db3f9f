"""The RT-DETR detector: ResNet-vd / PP-HGNetV2 backbone, HybridEncoder, RTDETRTransformer."""
import importlib

import torch
import torch.nn as nn

from mmdet_lite.models.post_process.detr_postprocess import DETRPostProcess
from mmdet_lite.models.transformers.hybrid_encoder import HybridEncoder
from mmdet_lite.models.transformers.rtdetr_decoder import RTDETRTransformer
from mmdet_lite.utils.errors import UserError

BACKBONES = {"ResNetVd": "mmdet_lite.models.backbones.resnet_vd",
             "PPHGNetV2": "mmdet_lite.models.backbones.hgnet_v2"}
LOSS_MODULE = "mmdet_lite.models.losses.detr_loss"


def to_detr_targets(targets):
    """Training targets as HF's list of dict(class_labels (n,) int64, boxes (n, 4) cxcywh in
    [0, 1]).

    Accepts that list as is, or a padded batch dict with ``gt_labels (B, M[, 1])``, ``gt_bboxes
    (B, M, 4)`` already normalised cxcywh (Paddle's DETR reader: NormalizeBox, BboxXYXY2XYWH) and
    ``pad_gt_mask (B, M[, 1])``; other keys (``epoch_id``, ...) are ignored.
    """
    if isinstance(targets, (list, tuple)):
        return list(targets)
    labels, boxes, mask = targets["gt_labels"], targets["gt_bboxes"], targets["pad_gt_mask"]
    out = []
    for lab, box, keep in zip(labels, boxes, mask):
        keep = keep.reshape(-1).bool()
        out.append(dict(class_labels=lab.reshape(-1)[keep].long(), boxes=box[keep].float()))
    return out


class RTDETR(nn.Module):
    """RT-DETR on 0..255 RGB float images (N, 3, H, W), normalised inside as
    ``(x / 255 - pixel_mean) / pixel_std`` (RT-DETR's reader: mean 0, std 1; non-persistent
    buffers).

    Eval: ``model(images)`` returns the decoder's raw ``(logits (N, Q, C), boxes (N, Q, 4))``,
    boxes normalised cxcywh, from decoder layer ``eval_idx``. ``postprocess(outputs,
    scale_factors)`` gives per-image dict(boxes (K, 4) in original pixels, scores (K,), labels (K,)
    int64) with Paddle's ``DETRPostProcess`` (top-``num_top_queries`` over queries x classes, no
    NMS).
    Train: ``model(images, targets)`` (see ``to_detr_targets``) returns the criterion's losses with
    ``total_loss``; the criterion is the ``criterion`` module given here (``build_rtdetr`` makes it
    from ``losses/detr_loss.py``), called as ``criterion(decoder_outputs, targets)``.
    """

    def __init__(self, backbone, encoder, decoder, pixel_mean=(0.0, 0.0, 0.0),
                 pixel_std=(1.0, 1.0, 1.0), criterion=None, num_top_queries=300):
        super().__init__()
        self.backbone = backbone
        self.encoder = encoder
        self.decoder = decoder
        self.criterion = criterion
        self.post_process = DETRPostProcess(num_top_queries, use_focal_loss=True)
        self._input_size = None
        for name, value in (("pixel_mean", pixel_mean), ("pixel_std", pixel_std)):
            self.register_buffer(name, torch.tensor(value, dtype=torch.float32).view(1, 3, 1, 1),
                                 persistent=False)

    def normalize(self, images):
        """0..255 RGB (N, 3, H, W) -> normalised input, in Paddle's NormalizeImage order."""
        return (images * (1.0 / 255.0) - self.pixel_mean) / self.pixel_std

    def forward_features(self, x):
        """Normalised input (N, 3, H, W) -> the encoder's maps [(N, D, H/s, W/s)], s = 8, 16, 32."""
        return self.encoder(self.backbone(x))

    def forward(self, images, targets=None):
        feats = self.forward_features(self.normalize(images))
        if not self.training:
            self._input_size = tuple(int(s) for s in images.shape[-2:])
            return self.decoder(feats)
        if targets is None:
            raise ValueError("RTDETR in train mode needs targets: call model(images, targets)")
        if self.criterion is None:
            raise RuntimeError("RTDETR has no criterion: build it with "
                               "build_rtdetr(..., loss=dict(...))")
        targets = to_detr_targets(targets)
        losses = dict(self.criterion(self.decoder(feats, targets), targets))
        if "total_loss" not in losses:
            losses = dict(total_loss=sum(losses.values()), **losses)
        return losses

    def postprocess(self, outputs, scale_factors, input_size=None):
        """Raw ``(logits, boxes)`` and ``scale_factors (N, 2)`` (resized / original, y then x) ->
        list of dict(boxes (K, 4) float32 in original pixels, scores (K,), labels (K,) int64).

        ``input_size`` (h, w) of the network input defaults to that of the last eval forward.
        """
        size = input_size if input_size is not None else self._input_size
        if size is None:
            raise ValueError("RTDETR.postprocess needs input_size (h, w) when no eval forward ran")
        logits = outputs[0]
        im_shape = torch.tensor(size, dtype=torch.float32, device=logits.device)
        im_shape = im_shape.expand(logits.shape[0], 2)
        return self.post_process(outputs, im_shape, scale_factors)


def _import(module_name, what):
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"{what}: {module_name} is not available ({exc})") from exc


def build_backbone(backbone):
    """``backbone`` dict: ``name`` ("ResNetVd" or "PPHGNetV2") plus its kwargs -> module with
    ``out_channels`` (one per returned map)."""
    backbone = dict(backbone)
    name = backbone.pop("name", None)
    if name not in BACKBONES:
        raise UserError(f"backbone.name: expected one of {sorted(BACKBONES)}, got {name!r}")
    return getattr(_import(BACKBONES[name], f"backbone.name {name}"), name)(**backbone)


def build_criterion(num_classes, loss):
    """``loss`` dict: ``name`` of a class of ``losses/detr_loss.py`` (default ``DETRLoss``; Paddle's
    ``DINOLoss`` is an alias) plus its kwargs; a ``matcher`` dict builds a ``HungarianMatcher``."""
    loss = dict(loss)
    name = loss.pop("name", "DETRLoss")
    name = "DETRLoss" if name == "DINOLoss" else name
    module = _import(LOSS_MODULE, "loss")
    if not hasattr(module, name):
        raise UserError(f"loss.name: {name!r} is not a class of {LOSS_MODULE}")
    if isinstance(loss.get("matcher"), dict):
        from mmdet_lite.models.assigners.hungarian_matcher import HungarianMatcher
        matcher = {k: v for k, v in loss["matcher"].items() if k != "name"}
        loss["matcher"] = HungarianMatcher(**matcher)
    return getattr(module, name)(num_classes=num_classes, **loss)


def build_rtdetr(num_classes, backbone, encoder, decoder, loss=None, pixel_mean=(0.0, 0.0, 0.0),
                 pixel_std=(1.0, 1.0, 1.0), num_top_queries=300):
    """Build an RT-DETR from config dicts.

    ``backbone``: see ``build_backbone``. ``encoder``: HybridEncoder kwargs; ``in_channels`` and
    ``feat_strides`` come from the backbone. ``decoder``: RTDETRTransformer kwargs;
    ``backbone_feat_channels`` and ``feat_strides`` come from the encoder. ``loss``: criterion
    config (``build_criterion``) or None for an inference-only model.
    """
    backbone_module = build_backbone(backbone)
    encoder = dict(encoder)
    encoder.setdefault("in_channels", list(backbone_module.out_channels))
    encoder.setdefault("feat_strides", list(getattr(backbone_module, "out_strides", (8, 16, 32))))
    if list(encoder["in_channels"]) != list(backbone_module.out_channels):
        raise UserError(f"encoder.in_channels is {list(encoder['in_channels'])} but the backbone "
                        f"outputs {list(backbone_module.out_channels)} channels")
    encoder_module = HybridEncoder(**encoder)
    decoder = dict(decoder)
    decoder.setdefault("backbone_feat_channels", encoder_module.out_channels)
    decoder.setdefault("feat_strides", encoder_module.feat_strides)
    decoder_module = RTDETRTransformer(num_classes=num_classes, **decoder)
    criterion = build_criterion(num_classes, loss) if loss else None
    return RTDETR(backbone_module, encoder_module, decoder_module, pixel_mean, pixel_std, criterion,
                  num_top_queries)

"""The RT-DETR detector: ResNet-vd / PP-HGNetV2 backbone, HybridEncoder, RTDETRTransformer."""
import torch

from mmdet_lite.models.architectures.base import NormalizedInputDetector
from mmdet_lite.models.assigners.hungarian_matcher import HungarianMatcher
from mmdet_lite.models.backbones import BACKBONES
from mmdet_lite.models.losses.detr_loss import DETRLoss
from mmdet_lite.models.post_process.detr_postprocess import detr_postprocess, detr_topk
from mmdet_lite.models.transformers.hybrid_encoder import HybridEncoder
from mmdet_lite.models.transformers.position_encoding import size_tensor
from mmdet_lite.models.transformers.rtdetr_decoder import RTDETRTransformer
from mmdet_lite.utils.errors import UserError
from mmdet_lite.utils.registry import Registry

LOSSES = Registry("loss.name", {"DETRLoss": DETRLoss})
LOSS_ALIASES = {"DINOLoss": "DETRLoss"}  # Paddle's name of the same criterion


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


class RTDETR(NormalizedInputDetector):
    """RT-DETR on 0..255 RGB float images (N, 3, H, W), normalised inside as
    ``(x / 255 - pixel_mean) / pixel_std`` (RT-DETR's reader: mean 0, std 1; non-persistent
    buffers). H and W are multiples of the largest feature stride (32).

    The ``Detector`` contract (see ``base.py``). Eval: ``model(images)`` returns the decoder's raw
    ``(logits (N, Q, C), boxes (N, Q, 4))``, boxes normalised cxcywh, from decoder layer
    ``eval_idx``. ``postprocess(outputs, scale_factors, input_sizes, orig_sizes)`` gives
    per-image ``Detections`` (boxes in original pixels) with Paddle's ``DETRPostProcess``
    (``detr_postprocess``: the top ``num_top_queries`` over queries x classes, sigmoid scores as
    ``use_focal_loss``, no NMS, no score threshold). The model keeps no state between calls.
    Train: ``model(images, targets)`` (see ``to_detr_targets``) returns the criterion's losses with
    ``total_loss``; the criterion is the ``criterion`` module given here (``build_rtdetr`` makes it
    from ``losses/detr_loss.py``), called as ``criterion(decoder_outputs, targets)``.
    ONNX: ``onnx_postprocess`` gives ``BOX_ONNX_OUTPUTS``.
    """

    onnx_raw_outputs = {
        "logits": "float32 (N, Q, C) class logits (scores = sigmoid)",
        "boxes": "float32 (N, Q, 4) cx cy w h normalised to the input image (0..1)",
    }
    onnx_raw_dynamic_axes = {0: "batch"}  # Q = num_queries whatever the input size

    def __init__(self, backbone, encoder, decoder, pixel_mean=(0.0, 0.0, 0.0),
                 pixel_std=(1.0, 1.0, 1.0), criterion=None, num_top_queries=300):
        super().__init__(pixel_mean, pixel_std)
        self.backbone = backbone
        self.encoder = encoder
        self.decoder = decoder
        self.criterion = criterion
        self.num_top_queries = num_top_queries
        self.use_focal_loss = True

    def forward_features(self, x):
        """Normalised input (N, 3, H, W) -> the encoder's maps [(N, D, H/s, W/s)], s = 8, 16, 32."""
        return self.encoder(self.backbone(x))

    def forward(self, images, targets=None):
        feats = self.forward_features(self.normalize(images))
        if not self.training:
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

    def postprocess(self, outputs, scale_factors, input_sizes, orig_sizes):
        """Raw ``(logits, boxes)``, ``scale_factors (N, 2)`` (resized / original, y then x) and
        ``input_sizes (N, 2)`` (h, w of each image fed to the network, before batch padding: the
        eval batches' ``input_sizes``) -> list of ``Detections`` (boxes float32 in original
        pixels, no masks).

        As Paddle, the original size is ``floor(input_size / scale_factor + 0.5)`` (for the
        float32 scale factors of ``TestTransform`` that is ``orig_sizes``, which is not needed).
        """
        if input_sizes is None:
            raise ValueError("RTDETR.postprocess needs input_sizes (N, 2): the (h, w) of each "
                             "network input before padding (eval batches carry 'input_sizes')")
        logits, boxes = outputs
        im_shape = torch.as_tensor(input_sizes, device=logits.device).to(torch.float32)
        return detr_postprocess(logits, boxes, im_shape.reshape(-1, 2), scale_factors,
                                self.num_top_queries, self.use_focal_loss)

    def check_onnx_export(self, opset, dynamic, postprocess=True):
        """Raise ``UserError`` for export settings this model does not support. ``dynamic``
        (batch, height, width) is supported: position embeddings, anchors and level shapes are
        computed from the traced input's shape."""
        if opset < 16:
            raise UserError(f"--opset {opset}: RT-DETR's deformable attention uses GridSample, "
                            "which needs opset 16 or newer")

    def onnx_postprocess(self, outputs, images, dynamic=False):
        """Export-friendly ``postprocess``: the top ``num_top_queries`` per image, boxes in INPUT
        pixels of ``images (N, 3, H, W)``, flattened over the batch: ``boxes (N*K, 4)`` x1y1x2y2,
        ``scores (N*K,)``, ``labels (N*K,)`` int64, ``batch_indices (N*K,)`` int64, grouped by
        image, best first. The same graph serves any input size (``dynamic``)."""
        logits, boxes = outputs
        num_images = logits.shape[0]
        size = size_tensor(images.shape[-2:], logits.device)
        boxes, scores, labels = detr_topk(logits, boxes, size.expand(num_images, 2),
                                          self.num_top_queries, self.use_focal_loss)
        k = scores.shape[1]
        batch = torch.arange(num_images, device=logits.device).unsqueeze(1).expand(num_images, k)
        return boxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1), batch.reshape(-1)


def build_criterion(num_classes, loss):
    """``loss`` dict: ``name`` of a registered criterion (``LOSSES``: ``DETRLoss``, the default;
    Paddle's ``DINOLoss`` is an alias) plus its kwargs; a ``matcher`` dict builds a
    ``HungarianMatcher``."""
    loss = dict(loss)
    name = loss.pop("name", "DETRLoss")
    if isinstance(loss.get("matcher"), dict):
        matcher = {k: v for k, v in loss["matcher"].items() if k != "name"}
        loss["matcher"] = HungarianMatcher(**matcher)
    return LOSSES.create(LOSS_ALIASES.get(name, name), loss, num_classes=num_classes)


def _check_eval_size(eval_size, stride):
    """The encoder's FPN fuses maps of strides 8..32: the input must divide by the largest."""
    if eval_size and any(int(s) % stride for s in eval_size):
        raise UserError(f"test_size {tuple(int(s) for s in eval_size)}: RT-DETR needs a height "
                        f"and width divisible by {stride} (use --tsize / test_size such as 640)")


def build_rtdetr(num_classes, backbone, encoder, decoder, loss=None, pixel_mean=(0.0, 0.0, 0.0),
                 pixel_std=(1.0, 1.0, 1.0), num_top_queries=300):
    """Build an RT-DETR from config dicts.

    ``backbone``: ``name`` ("ResNet" or "PPHGNetV2", a ``BACKBONES`` entry) plus its kwargs.
    ``encoder``: HybridEncoder kwargs; ``in_channels`` and ``feat_strides`` come from the backbone.
    ``decoder``: RTDETRTransformer kwargs; ``backbone_feat_channels`` and ``feat_strides`` come
    from the encoder. ``loss``: criterion config (``build_criterion``) or None for an
    inference-only model.
    """
    backbone_module = BACKBONES.build(backbone)
    encoder = dict(encoder)
    encoder.setdefault("in_channels", list(backbone_module.out_channels))
    encoder.setdefault("feat_strides", list(getattr(backbone_module, "out_strides", (8, 16, 32))))
    if list(encoder["in_channels"]) != list(backbone_module.out_channels):
        raise UserError(f"encoder.in_channels is {list(encoder['in_channels'])} but the backbone "
                        f"outputs {list(backbone_module.out_channels)} channels")
    _check_eval_size(encoder.get("eval_size") or decoder.get("eval_size"),
                     max(encoder["feat_strides"]))
    encoder_module = HybridEncoder(**encoder)
    decoder = dict(decoder)
    decoder.setdefault("backbone_feat_channels", encoder_module.out_channels)
    decoder.setdefault("feat_strides", encoder_module.feat_strides)
    decoder_module = RTDETRTransformer(num_classes=num_classes, **decoder)
    criterion = build_criterion(num_classes, loss) if loss else None
    return RTDETR(backbone_module, encoder_module, decoder_module, pixel_mean, pixel_std, criterion,
                  num_top_queries)

"""The SOLOv2 detector: ResNet backbone, FPN, SOLOv2Head and SOLOv2MaskHead."""
from mmdet_lite.models.architectures.base import NormalizedInputDetector
from mmdet_lite.models.backbones import BACKBONES
from mmdet_lite.models.heads.solov2_head import SOLOv2Head
from mmdet_lite.models.heads.solov2_mask_head import SOLOv2MaskHead
from mmdet_lite.models.layers import DeformableConvV2
from mmdet_lite.models.losses.solov2_loss import SOLOv2Loss
from mmdet_lite.models.necks.fpn import FPN
from mmdet_lite.models.post_process.solov2_onnx_postprocess import solov2_onnx_postprocess
from mmdet_lite.models.post_process.solov2_postprocess import solov2_postprocess
from mmdet_lite.utils.errors import UserError
from mmdet_lite.utils.registry import Registry

__all__ = ["SOLOv2", "build_solov2", "build_solov2_heads", "BACKBONES", "NECKS", "LOSSES"]

NECKS = Registry("neck.name", {"FPN": FPN})
LOSSES = Registry("loss.name", {"SOLOv2Loss": SOLOv2Loss})


class SOLOv2(NormalizedInputDetector):
    """SOLOv2 on 0..255 RGB float images (N, 3, H, W), H and W multiples of 32, normalised
    inside as ``(x / 255 - pixel_mean) / pixel_std`` (non-persistent buffers).

    The ``Detector`` contract (see ``base.py``). Eval: ``model(images)`` returns the raw
    ``(cate_scores (N, A, C), kernels (N, A, E), mask_feats (N, E, H/4, W/4))`` over the A grid
    cells of every level (``SOLOv2Head.forward``, ``SOLOv2MaskHead``). ``postprocess(outputs,
    scale_factors, input_sizes, orig_sizes)`` gives per-image ``Detections`` with bool masks
    (K, H, W) at the original size and boxes enclosing them, by Paddle's post-processing with
    the head's thresholds (``solov2_postprocess``). Train: ``model(images, targets)`` with the
    ``Gt2Solov2Target`` entries (see ``SOLOv2Head.loss_inputs``) returns dict(total_loss,
    loss_ins, loss_cate) from ``criterion`` (``SOLOv2Loss``, built from the ``loss`` config on
    first use). ONNX: the raw outputs (``--no-postprocess``) or ``onnx_postprocess``'s
    detections (``onnx_post_outputs``); DCNv2 exports as ONNX ``DeformConv`` (opset >= 19).
    """

    onnx_raw_outputs = {
        "cate_scores": "float32 (N, A, C) sigmoid category scores of the grid cells after the 2x2 "
                       "point NMS (A = sum of num_grids squared)",
        "kernels": "float32 (N, A, E) dynamic mask kernels of the grid cells",
        "mask_feats": "float32 (N, E, H/4, W/4) unified mask features",
    }
    onnx_raw_dynamic_axes = {0: "batch"}
    onnx_output_dynamic_axes = {"mask_feats": {2: "mask_height", 3: "mask_width"},
                                "masks": {1: "height", 2: "width"}}
    onnx_post_outputs = {
        "masks": "bool (M, H, W) instance masks at the (padded) input size",
        "scores": "float32 (M,) detection scores, best first within an image",
        "labels": "int64 (M,) contiguous class indices",
        "batch_indices": "int64 (M,) the image of each detection",
    }

    def __init__(self, backbone, neck, head, mask_head, pixel_mean=(0.485, 0.456, 0.406),
                 pixel_std=(0.229, 0.224, 0.225), loss=None):
        super().__init__(pixel_mean, pixel_std)
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.mask_head = mask_head
        self.loss_config = dict(loss) if loss else None
        self.criterion = None

    def forward_features(self, x):
        """Normalised input (N, 3, H, W) -> the FPN maps [(N, D, H/s, W/s)], s = 4 .. 64."""
        return self.neck(self.backbone(x))

    def get_criterion(self):
        """The training loss, built from ``loss_config`` on the first call."""
        if self.criterion is None:
            if self.loss_config is None:
                raise RuntimeError("SOLOv2 has no loss: build it with build_solov2(..., "
                                   "loss=dict(name='SOLOv2Loss', ...))")
            self.criterion = LOSSES.build(self.loss_config)
        return self.criterion

    def forward(self, images, targets=None):
        feats = self.forward_features(self.normalize(images))
        mask_feats = self.mask_head(feats)
        if not self.training:
            return (*self.head(feats), mask_feats)
        if targets is None:
            raise ValueError("SOLOv2 in train mode needs targets: call model(images, targets)")
        cate_logits, kernels = self.head(feats)
        loss_ins, loss_cate = self.get_criterion()(
            *self.head.loss_inputs(cate_logits, kernels, mask_feats, targets))
        return dict(total_loss=loss_ins + loss_cate, loss_ins=loss_ins, loss_cate=loss_cate)

    def postprocess(self, outputs, scale_factors, input_sizes, orig_sizes):
        """Raw ``(cate_scores, kernels, mask_feats)``, ``scale_factors (N, 2)`` (y, x),
        ``input_sizes (N, 2)`` and ``orig_sizes (N, 2)`` (h, w) -> list of ``Detections``."""
        if input_sizes is None or orig_sizes is None:
            raise ValueError("SOLOv2.postprocess needs input_sizes and orig_sizes (N, 2): the "
                             "(h, w) of each network input before padding and of each original "
                             "image (eval batches carry both)")
        cate_scores, kernels, mask_feats = outputs
        head = self.head
        return solov2_postprocess(cate_scores, kernels, mask_feats,
                                  head.cell_strides(cate_scores.device), scale_factors,
                                  input_sizes, orig_sizes, score_threshold=head.score_threshold,
                                  mask_threshold=head.mask_threshold, mask_nms=head.mask_nms)

    def check_onnx_export(self, opset, dynamic, postprocess=True):
        """Raise ``UserError`` for export settings this model does not support: deformable
        convolutions (DCNv2) need opset 19 (ONNX ``DeformConv``), the post-processing opset 14
        (``Trilu`` in Matrix NMS). ``dynamic`` (batch, height, width) is supported."""
        if opset < 19 and any(isinstance(m, DeformableConvV2) for m in self.modules()):
            raise UserError(f"--opset {opset}: SOLOv2 with deformable convolutions (DCNv2) "
                            "exports as ONNX DeformConv, which needs opset 19 or newer")
        if postprocess and opset < 14:
            raise UserError(f"--opset {opset}: SOLOv2's post-processing (Matrix NMS) needs "
                            "opset 14 or newer; export with --no-postprocess for older opsets")

    def onnx_postprocess(self, outputs, images, dynamic=False):
        """Export-friendly ``postprocess`` (``solov2_onnx_postprocess``) with the head's
        thresholds: ``masks (M, H, W)`` bool at the input size of ``images (N, 3, H, W)``,
        ``scores (M,)``, ``labels (M,)``, ``batch_indices (M,)``, grouped by image, best first,
        at most ``post_nms_top_n`` per image. The same graph serves any input size."""
        head = self.head
        return solov2_onnx_postprocess(*outputs, head.cell_strides(outputs[0].device),
                                       head.score_threshold, head.mask_threshold, head.mask_nms)


def _channels(module, what):
    channels = getattr(module, "out_channels", None)
    if channels is None:
        raise UserError(f"{what} has no out_channels")
    return list(channels) if not isinstance(channels, int) else [channels]


def build_solov2_heads(num_classes, in_channels, head, mask_head, mask_nms=None):
    """``(SOLOv2Head, SOLOv2MaskHead)`` on FPN maps of ``in_channels`` from their config dicts
    (``in_channels`` may be given in them, and must then agree); ``mask_nms`` is kept by the
    head. The mask head's ``out_channels`` must equal the head's ``kernel_out_channels``."""
    head, mask_head = dict(head), dict(mask_head)
    for name, config in (("head", head), ("mask_head", mask_head)):
        config.setdefault("in_channels", in_channels)
        if config["in_channels"] != in_channels:
            raise UserError(f"{name}.in_channels is {config['in_channels']} but the neck outputs "
                            f"{in_channels} channels")
    head_module = SOLOv2Head(num_classes=num_classes, mask_nms=mask_nms, **head)
    mask_head_module = SOLOv2MaskHead(**mask_head)
    if mask_head_module.out_channels != head_module.kernel_out_channels:
        raise UserError(f"mask_head.out_channels ({mask_head_module.out_channels}) must equal "
                        f"head.kernel_out_channels ({head_module.kernel_out_channels})")
    return head_module, mask_head_module


def build_solov2(num_classes, backbone, neck, head, mask_head, loss=None, mask_nms=None,
                 pixel_mean=(0.485, 0.456, 0.406), pixel_std=(0.229, 0.224, 0.225)):
    """Build a SOLOv2 from config dicts.

    ``backbone`` / ``neck``: ``name`` in ``BACKBONES`` / ``NECKS`` plus kwargs; the neck's
    ``in_channels`` come from the backbone. ``head`` (SOLOv2Head kwargs), ``mask_head``
    (SOLOv2MaskHead kwargs) and ``mask_nms`` (Matrix NMS kwargs, see ``mask_matrix_nms``): see
    ``build_solov2_heads``; both heads take the neck's channels. ``loss``: the criterion config
    (``name`` in ``LOSSES``, e.g. ``SOLOv2Loss``) or None for inference only.
    """
    backbone_module = BACKBONES.build(backbone)
    neck_module = NECKS.build(neck, in_channels=_channels(backbone_module, "the backbone"))
    channels = _channels(neck_module, "the neck")
    if len(set(channels)) != 1:
        raise UserError(f"SOLOv2 needs one channel count on every neck output, got {channels}")
    head_module, mask_head_module = build_solov2_heads(num_classes, channels[0], head, mask_head,
                                                       mask_nms)
    return SOLOv2(backbone_module, neck_module, head_module, mask_head_module, pixel_mean,
                  pixel_std, loss)

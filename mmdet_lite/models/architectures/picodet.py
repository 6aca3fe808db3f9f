"""The PicoDet detector: LCNet backbone, LCPAN/CSPPAN neck, PicoHeadV2 head."""
from mmdet_lite.models.architectures.base import NormalizedInputDetector
from mmdet_lite.models.backbones.lcnet import LCNet
from mmdet_lite.models.heads.pico_head_v2 import PicoHeadV2
from mmdet_lite.models.necks.csp_pan import CSPPAN
from mmdet_lite.models.necks.lcpan import LCPAN
from mmdet_lite.models.post_process.onnx_nms import onnx_multiclass_nms
from mmdet_lite.utils.errors import UserError
from mmdet_lite.utils.registry import Registry

NECKS = Registry("neck.name", {"LCPAN": LCPAN, "CSPPAN": CSPPAN})


class PicoDet(NormalizedInputDetector):
    """PicoDet detector on 0..255 RGB float images (N, 3, H, W).

    The ``Detector`` contract (see ``base.py``). The input is normalised inside as
    ``(x / 255 - pixel_mean) / pixel_std`` (RGB, 0..1 scale; non-persistent buffers). In eval mode
    ``forward`` returns the head's raw ``(scores (N, A, C), bboxes (N, A, 4) x1y1x2y2 in input
    pixels)``; ``postprocess`` turns them into per-image ``Detections`` in original-image pixels
    (the head's NMS, ``head.nms``). In train mode ``forward(images, targets)`` (targets as
    ``PicoHeadV2.loss`` takes them) returns dict(total_loss, loss_vfl, loss_bbox, loss_dfl).
    ONNX: ``onnx_postprocess`` gives ``BOX_ONNX_OUTPUTS``.
    """

    onnx_raw_outputs = {
        "scores": "float32 (N, A, C) sigmoid class scores of every anchor point",
        "bboxes": "float32 (N, A, 4) x1 y1 x2 y2 in input pixels",
    }

    def __init__(self, backbone, neck, head, pixel_mean=(0.485, 0.456, 0.406),
                 pixel_std=(0.229, 0.224, 0.225)):
        super().__init__(pixel_mean, pixel_std)
        self.backbone = backbone
        self.neck = neck
        self.head = head

    def forward_features(self, x):
        """Normalised input (N, 3, H, W) -> list of neck feature maps, one per head stride."""
        return self.neck(self.backbone(x))

    def forward(self, images, targets=None):
        if not self.training:
            return self.head(self.forward_features(self.normalize(images)))
        if targets is None:
            raise ValueError("PicoDet in train mode needs targets: call model(images, targets)")
        losses = self.head.loss(self.forward_features(self.normalize(images)), targets)
        return dict(total_loss=sum(losses.values()), **losses)

    def postprocess(self, outputs, scale_factors, input_sizes, orig_sizes):
        """Raw ``(scores, bboxes)`` and ``scale_factors (N, 2)`` (resized / original, y then x) ->
        list of ``Detections`` (boxes float32 in original pixels, no masks) after NMS.

        PicoDet's boxes are in input pixels and scale back by ``scale_factors`` alone:
        ``input_sizes`` and ``orig_sizes`` (the contract's) are not needed."""
        return self.head.postprocess(outputs, scale_factors)

    def check_onnx_export(self, opset, dynamic, postprocess=True):
        """Raise ``UserError`` for export settings this model does not support."""
        if opset < 11:
            raise UserError(f"--opset {opset}: NonMaxSuppression needs opset 11 or newer")
        if postprocess:
            self._nms_settings()

    def _nms_settings(self):
        nms = getattr(self.head, "nms", None)
        if not isinstance(nms, dict):
            raise UserError("this model has no head.nms settings: export it with --no-postprocess")
        return {k: nms[k] for k in ("score_threshold", "nms_top_k", "keep_top_k", "nms_threshold")}

    def onnx_postprocess(self, outputs, images, dynamic=False):
        """Export-friendly ``postprocess``: Paddle's MultiClassNMS as ONNX ``NonMaxSuppression``
        (``mmdet_lite.models.post_process.onnx_nms``), boxes in input pixels: ``boxes (M, 4)``,
        ``scores (M,)``, ``labels (M,)``, ``batch_indices (M,)``. ``dynamic`` pads the candidates
        so that the graph holds for any input size."""
        scores, bboxes = outputs
        return onnx_multiclass_nms(bboxes, scores, pad_top_k=dynamic, **self._nms_settings())


def build_picodet(num_classes, backbone, neck, head, pixel_mean=(0.485, 0.456, 0.406),
                  pixel_std=(0.229, 0.224, 0.225)):
    """Build a PicoDet from config dicts.

    ``backbone``: LCNet kwargs. ``neck``: ``name`` ("LCPAN" or "CSPPAN") plus its kwargs; its
    ``in_channels`` come from the backbone. ``head``: PicoHeadV2 kwargs; ``feat_in_chan`` (and the
    PicoFeat ``feat_in``/``feat_out``) default to the neck's output channels.
    """
    backbone_module = LCNet(**backbone)
    neck_module = NECKS.build(neck, in_channels=list(backbone_module.out_channels))
    channels = neck_module.out_channels
    channels = channels if isinstance(channels, int) else channels[0]
    head = dict(head)
    head.setdefault("feat_in_chan", channels)
    if head["feat_in_chan"] != channels:
        raise UserError(f"head.feat_in_chan is {head['feat_in_chan']} but the neck outputs "
                        f"{channels} channels")
    head_module = PicoHeadV2(num_classes=num_classes, **head)
    return PicoDet(backbone_module, neck_module, head_module, pixel_mean, pixel_std)

"""What every detector shares: the contract generic code relies on, and the input normalisation."""
from typing import Dict, List, Sequence, Tuple, Union

import torch
import torch.nn as nn

from mmdet_lite.models.post_process.detections import Detections

__all__ = ["Detector", "NormalizedInputDetector", "BOX_ONNX_OUTPUTS", "POSTPROCESS_SIZES"]

# The keys of an eval batch (``eval_collate``) that ``Detector.postprocess`` takes after the raw
# outputs, in its argument order.
POSTPROCESS_SIZES = ("scale_factors", "input_sizes", "orig_sizes")

BOX_ONNX_OUTPUTS = {
    "boxes": "float32 (M, 4) x1 y1 x2 y2 in input pixels",
    "scores": "float32 (M,) detection scores, best first within an image",
    "labels": "int64 (M,) contiguous class indices",
    "batch_indices": "int64 (M,) the image of each detection",
}


class Detector(nn.Module):
    """The contract of a detector family: the evaluator, the ``Predictor`` and the ONNX exporter
    use nothing else, so they never read a family's config layout.

    - ``forward(images, targets=None)``: ``images`` float32 (N, 3, H, W) 0..255 RGB. Eval mode:
      the raw outputs, a tuple of tensors (named by ``onnx_raw_outputs``). Train mode with the
      family's ``targets``: a dict of scalar losses including ``total_loss``.
    - ``postprocess(outputs, scale_factors, input_sizes, orig_sizes)``: the raw outputs of a batch
      and its sizes as ``mmdet_lite.data.loader.eval_collate`` gives them (``scale_factors``
      float32 (N, 2) (resized / original, y then x), ``input_sizes`` and ``orig_sizes`` int64
      (N, 2) (h, w) of each network input before padding and of each original image) -> one
      ``mmdet_lite.models.post_process.detections.Detections`` per image, boxes (and masks) in
      original pixels. Score and NMS thresholds are the exp's (``BaseExp.set_score_threshold``).
    - ONNX (``mmdet_lite.exporting.onnx_export``): ``check_onnx_export(opset, dynamic,
      postprocess)`` raises ``UserError`` for unsupported settings; ``onnx_postprocess(outputs,
      images, dynamic)`` returns the tensors of ``onnx_post_outputs`` (name -> description, in
      graph order; default ``BOX_ONNX_OUTPUTS``); ``onnx_raw_outputs`` names the raw outputs and
      ``onnx_raw_dynamic_axes`` their dynamic axes (default batch and anchors);
      ``onnx_output_dynamic_axes`` (output name -> {dim: name}) adds per-output dynamic axes
      with ``--dynamic`` (such as a mask's height and width).
    """

    onnx_raw_outputs: Dict[str, str] = {}
    onnx_post_outputs: Dict[str, str] = BOX_ONNX_OUTPUTS
    onnx_raw_dynamic_axes: Dict[int, str] = {0: "batch", 1: "anchors"}
    onnx_output_dynamic_axes: Dict[str, Dict[int, str]] = {}

    def forward(self, images: torch.Tensor,
                targets: Union[dict, List[dict], None] = None
                ) -> Union[Tuple[torch.Tensor, ...], Dict[str, torch.Tensor]]:
        raise NotImplementedError

    def postprocess(self, outputs: Sequence[torch.Tensor], scale_factors: torch.Tensor,
                    input_sizes: torch.Tensor, orig_sizes: torch.Tensor) -> List[Detections]:
        raise NotImplementedError

    def check_onnx_export(self, opset: int, dynamic: bool, postprocess: bool = True) -> None:
        raise NotImplementedError

    def onnx_postprocess(self, outputs: Sequence[torch.Tensor], images: torch.Tensor,
                         dynamic: bool = False) -> Tuple[torch.Tensor, ...]:
        raise NotImplementedError


class NormalizedInputDetector(Detector):
    """Base of the detectors: images are 0..255 RGB float (N, 3, H, W), normalised inside.

    ``normalize(images)`` is ``(images / 255 - pixel_mean) / pixel_std`` (Paddle's NormalizeImage
    order); the statistics are non-persistent (1, 3, 1, 1) buffers, so checkpoints never hold them.
    """

    def __init__(self, pixel_mean: Sequence[float], pixel_std: Sequence[float]):
        super().__init__()
        for name, value in (("pixel_mean", pixel_mean), ("pixel_std", pixel_std)):
            self.register_buffer(name, torch.tensor(value, dtype=torch.float32).view(1, 3, 1, 1),
                                 persistent=False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """0..255 RGB (N, 3, H, W) -> normalised input, in Paddle's NormalizeImage order."""
        return (images * (1.0 / 255.0) - self.pixel_mean) / self.pixel_std

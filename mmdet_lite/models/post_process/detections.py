"""``Detections``: what every detector's ``postprocess`` returns for one image."""
from dataclasses import dataclass, fields
from typing import Optional

import torch

__all__ = ["Detections"]


@dataclass
class Detections:
    """The detections of one image, in the ORIGINAL image's pixels (tensors, on any device).

    boxes: float (K, 4) x1 y1 x2 y2; scores: float (K,); labels: int64 (K,) contiguous class
    indices; masks: bool (K, H, W) with (H, W) the original image's size, for mask models, else
    None. Rows are in the family's output order (PicoDet: by label, then by score; RT-DETR: by
    score).
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    masks: Optional[torch.Tensor] = None

    def __len__(self):
        return len(self.scores)

    def select(self, keep):
        """The detections at ``keep`` (a bool (K,) mask or an index tensor), every field alike."""
        return Detections(**{f.name: None if getattr(self, f.name) is None
                             else getattr(self, f.name)[keep] for f in fields(self)})

    @classmethod
    def unbatch(cls, boxes, scores, labels):
        """Batched ``boxes (N, K, 4)``, ``scores (N, K)``, ``labels (N, K)`` -> list of N
        ``Detections`` without masks (whose original sizes differ from image to image)."""
        return [cls(b, s, lab) for b, s, lab in zip(boxes, scores, labels)]

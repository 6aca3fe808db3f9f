"""Generalized IoU loss (Rezatofighi et al., 2019) on aligned box pairs, as ppdet's GIoULoss."""
import torch
from torch import nn
from torchvision.ops import generalized_box_iou_loss

__all__ = ["GIoULoss"]


class GIoULoss(nn.Module):
    """1 - GIoU between aligned pairs of x1y1x2y2 boxes, computed in float32 with autocast off.

    Same value as ppdet's GIoULoss: torchvision's eps placement (inter / (union + eps), enclosing
    term over (area_c + eps)) is algebraically ppdet's.

    Args:
        loss_weight (float): multiplies the result (PicoHeadV2: 2.5).
        eps (float): guards the divisions.
        reduction (str): "none" (PicoHeadV2's) | "mean" | "sum".

    forward(pred (N, 4), target (N, 4), weight=None (N,)) -> (N,) for "none", else a scalar
    (mean or sum of loss * weight). ppdet returns (N, 1) for "none" and ignores the weight there.
    """

    def __init__(self, loss_weight=1.0, eps=1e-10, reduction="none"):
        super().__init__()
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"GIoULoss: reduction must be 'none', 'mean' or 'sum', "
                             f"got {reduction!r}")
        self.loss_weight = loss_weight
        self.eps = eps
        self.reduction = reduction

    def forward(self, pred, target, weight=None):
        with torch.autocast(device_type=pred.device.type, enabled=False):
            loss = generalized_box_iou_loss(pred.float(), target.float(), "none", self.eps)
            if weight is not None:
                loss = loss * weight.float().reshape(loss.shape)
        if self.reduction == "sum":
            loss = loss.sum()
        elif self.reduction == "mean":
            loss = loss.mean()
        return loss * self.loss_weight

"""Varifocal loss (VarifocalNet, Zhang et al., 2021) as ppdet 2.6.0 computes it; autocast-safe."""
import torch
import torch.nn.functional as F
from torch import nn

from .utils import weight_reduce_loss

__all__ = ["VarifocalLoss", "varifocal_loss"]


def varifocal_loss(pred, target, alpha=0.75, gamma=2.0, iou_weighted=True, use_sigmoid=True):
    """Element-wise varifocal loss, computed in float32 with autocast off.

    Positives (target > 0) are weighted by the target (IoU-aware score) when `iou_weighted`, else by
    1; negatives by alpha * |p - target|^gamma (not detached, as in ppdet).

    Args:
        pred (Tensor): (N, C) logits if `use_sigmoid`, else probabilities in [0, 1].
        target (Tensor): (N, C) soft targets in [0, 1].
    Returns:
        (N, C) with `use_sigmoid`, else (N,) (summed over classes), exactly as ppdet.
    """
    if pred.shape != target.shape:
        raise ValueError(f"varifocal_loss: pred {tuple(pred.shape)} and target "
                         f"{tuple(target.shape)} differ")
    with torch.autocast(device_type=pred.device.type, enabled=False):
        pred, target = pred.float(), target.float()
        prob = pred.sigmoid() if use_sigmoid else pred.clamp(0.0, 1.0)
        pos_weight = target if iou_weighted else torch.ones_like(target)
        focal_weight = torch.where(target > 0, pos_weight, alpha * (prob - target).abs().pow(gamma))
        if use_sigmoid:
            return F.binary_cross_entropy_with_logits(pred, target, reduction="none") * focal_weight
        loss = F.binary_cross_entropy(prob, target, reduction="none") * focal_weight
        return loss.sum(dim=1)


class VarifocalLoss(nn.Module):
    """Varifocal loss module with ppdet's reduction rules.

    PicoHeadV2 uses use_sigmoid=False (its scores are already probabilities), iou_weighted=True,
    loss_weight=1.0 and avg_factor = sum of the assigned scores.

    forward(pred (N, C), target (N, C), weight=None, avg_factor=None) -> scalar for "mean"/"sum",
    else the element-wise loss ((N, C) with use_sigmoid, (N,) without), float32.
    """

    def __init__(self, use_sigmoid=True, alpha=0.75, gamma=2.0, iou_weighted=True,
                 reduction="mean", loss_weight=1.0):
        super().__init__()
        if alpha < 0:
            raise ValueError(f"VarifocalLoss: alpha must be >= 0, got {alpha}")
        self.use_sigmoid = use_sigmoid
        self.alpha = alpha
        self.gamma = gamma
        self.iou_weighted = iou_weighted
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred, target, weight=None, avg_factor=None):
        loss = self.loss_weight * varifocal_loss(pred, target, self.alpha, self.gamma,
                                                 self.iou_weighted, self.use_sigmoid)
        return weight_reduce_loss(loss, weight, self.reduction, avg_factor)

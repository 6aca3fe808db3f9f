"""Distribution focal loss (Generalized Focal Loss, Li et al., 2020) as ppdet 2.6.0 computes it."""
import torch
import torch.nn.functional as F
from torch import nn

from .utils import weight_reduce_loss

__all__ = ["DistributionFocalLoss", "distribution_focal_loss"]


def distribution_focal_loss(pred, label):
    """Cross-entropy of the two bins around a continuous target, weighted by linear interpolation.

    Args:
        pred (Tensor): (N, reg_max + 1) logits over the bins 0..reg_max.
        label (Tensor): (N,) targets in [0, reg_max] (PicoHeadV2 clips them to reg_max - 0.1).
    Returns:
        (N,) float32 loss, computed with autocast off.
    """
    with torch.autocast(device_type=pred.device.type, enabled=False):
        log_prob = F.log_softmax(pred.float(), dim=-1)
        label = label.float()
        left = label.long()
        right = (left + 1).clamp(max=pred.shape[-1] - 1)  # its weight is 0 when label == reg_max
        weight_left = (left + 1).float() - label
        weight_right = label - left.float()
        return -(log_prob.gather(-1, left[:, None])[:, 0] * weight_left
                 + log_prob.gather(-1, right[:, None])[:, 0] * weight_right)


class DistributionFocalLoss(nn.Module):
    """DFL module with ppdet's reduction rules.

    PicoHeadV2 calls it with pred (P*4, reg_max+1), target (P*4,), weight (P*4,) = the positive's
    max assigned score repeated for its 4 sides, avg_factor=4.0, loss_weight=0.5, and then divides
    the result by the (all-reduced) assigned-score sum.

    forward(pred, target, weight=None, avg_factor=None) -> scalar for "mean"/"sum", else (N,).
    """

    def __init__(self, reduction="mean", loss_weight=1.0):
        super().__init__()
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"DistributionFocalLoss: reduction must be 'none', 'mean' or 'sum', "
                             f"got {reduction!r}")
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred, target, weight=None, avg_factor=None):
        loss = self.loss_weight * distribution_focal_loss(pred, target)
        return weight_reduce_loss(loss, weight, self.reduction, avg_factor)

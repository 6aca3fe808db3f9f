"""Quality focal loss (Generalized Focal Loss, Li et al., 2020) as mmdet 3.3.0 computes it."""
import torch
import torch.nn.functional as F
from torch import nn

from .utils import weight_reduce_loss

__all__ = ["QualityFocalLoss", "quality_focal_loss"]


def quality_focal_loss(pred, labels, scores, beta=2.0):
    """mmdet's ``quality_focal_loss`` with the ``(label, score)`` target, in float32.

    Every class is a negative (target 0, weight ``sigmoid ** beta``) except the label of a positive
    sample, whose target is its quality score (weight ``|score - sigmoid| ** beta``).

    Args:
        pred (Tensor): (N, C) logits.
        labels (Tensor): (N,) int64 class index; ``C`` (or anything outside 0..C-1) = background.
        scores (Tensor): (N,) quality (IoU) targets of the positives.
    Returns:
        (N,) the loss summed over classes.
    """
    with torch.autocast(device_type=pred.device.type, enabled=False):
        pred, scores = pred.float(), scores.float()
        prob = pred.sigmoid()
        loss = F.binary_cross_entropy_with_logits(pred, torch.zeros_like(pred),
                                                  reduction="none") * prob.pow(beta)
        pos = ((labels >= 0) & (labels < pred.shape[1])).nonzero().squeeze(1)
        pos_label = labels[pos].long()
        scale = scores[pos] - prob[pos, pos_label]
        loss[pos, pos_label] = F.binary_cross_entropy_with_logits(
            pred[pos, pos_label], scores[pos], reduction="none") * scale.abs().pow(beta)
        return loss.sum(dim=1)


class QualityFocalLoss(nn.Module):
    """mmdet's ``QualityFocalLoss(use_sigmoid=True)`` with the ``(labels, scores)`` target.

    forward(pred (N, C) logits, labels (N,), scores (N,), weight=None (N,), avg_factor=None) ->
    ``loss_weight`` times the reduced loss (a scalar; (N,) for reduction "none").
    """

    def __init__(self, beta=2.0, loss_weight=1.0, reduction="mean"):
        super().__init__()
        self.beta = beta
        self.loss_weight = loss_weight
        self.reduction = reduction

    def forward(self, pred, labels, scores, weight=None, avg_factor=None):
        loss = quality_focal_loss(pred, labels, scores, self.beta)
        return self.loss_weight * weight_reduce_loss(loss, weight, self.reduction, avg_factor)

"""Dice loss as ppdet's SOLOv2Loss computes it (``_dice_loss``)."""
import torch

__all__ = ["dice_loss"]


def dice_loss(pred, target, eps=0.001):
    """Per-instance ``1 - 2 sum(p t) / (sum(p^2) + eps + sum(t^2) + eps)``.

    Args:
        pred (Tensor): (N, ...) probabilities (sigmoid of the mask logits).
        target (Tensor): (N, ...) binary targets, the shape of ``pred``.
    Returns:
        (N,) losses in ``pred``'s dtype.
    """
    if pred.shape != target.shape:
        raise ValueError(f"dice_loss: pred {tuple(pred.shape)} and target "
                         f"{tuple(target.shape)} differ")
    pred = pred.reshape(pred.shape[0], -1)
    target = target.reshape(target.shape[0], -1).to(pred.dtype)
    inter = torch.sum(pred * target, dim=1)
    pred_sq = torch.sum(pred * pred, dim=1) + eps
    target_sq = torch.sum(target * target, dim=1) + eps
    return 1 - (2 * inter) / (pred_sq + target_sq)

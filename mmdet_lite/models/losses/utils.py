"""Helpers shared by the losses."""

__all__ = ["weight_reduce_loss"]


def weight_reduce_loss(loss, weight=None, reduction="mean", avg_factor=None):
    """ppdet/mmdet loss reduction: ``loss`` (any shape) times ``weight`` (broadcastable to it, or
    None), then "none" (same shape) | "mean" | "sum" (scalars); with ``avg_factor``, "mean" is
    sum / avg_factor and "sum" is an error."""
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    if weight is not None:
        loss = loss * weight
    if avg_factor is None:
        return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]
    if reduction == "sum":
        raise ValueError("avg_factor can not be used with reduction='sum'")
    return loss.sum() / avg_factor if reduction == "mean" else loss

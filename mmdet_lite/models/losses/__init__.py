"""Training losses of the dense heads."""
from .dfl import DistributionFocalLoss, distribution_focal_loss
from .dice import dice_loss
from .giou import GIoULoss
from .quality_focal import QualityFocalLoss, quality_focal_loss
from .rtmdet_loss import RTMDetLoss
from .solov2_loss import SOLOv2Loss
from .utils import weight_reduce_loss
from .varifocal import VarifocalLoss, varifocal_loss

__all__ = ["DistributionFocalLoss", "distribution_focal_loss", "dice_loss", "GIoULoss",
           "QualityFocalLoss", "quality_focal_loss", "RTMDetLoss", "SOLOv2Loss",
           "VarifocalLoss", "varifocal_loss", "weight_reduce_loss"]

"""Training losses of the dense heads."""
from .dfl import DistributionFocalLoss, distribution_focal_loss
from .giou import GIoULoss
from .utils import weight_reduce_loss
from .varifocal import VarifocalLoss, varifocal_loss

__all__ = ["DistributionFocalLoss", "distribution_focal_loss", "GIoULoss", "VarifocalLoss",
           "varifocal_loss", "weight_reduce_loss"]

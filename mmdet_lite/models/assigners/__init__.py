"""Label assigners used to build dense-head training targets."""
from .atss import ATSSAssigner
from .dynamic_soft_label import DynamicSoftLabelAssigner
from .task_aligned import TaskAlignedAssigner
from .utils import pad_gt

__all__ = ["ATSSAssigner", "DynamicSoftLabelAssigner", "TaskAlignedAssigner", "pad_gt"]

"""Label assigners used to build dense-head training targets."""
from .atss import ATSSAssigner
from .task_aligned import TaskAlignedAssigner
from .utils import pad_gt

__all__ = ["ATSSAssigner", "TaskAlignedAssigner", "pad_gt"]

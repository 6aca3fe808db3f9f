"""Optimizers and learning-rate schedules as PaddleDetection builds them, for every family."""
from .lr_scheduler import (
                           LR_DECAYS,
                           WARMUPS,
                           CosineDecay,
                           ExpWarmup,
                           LearningRate,
                           LinearWarmup,
                           LinearWarmupFlatCosine,
                           PiecewiseDecay,
                           build_learning_rate,
                           build_lr_scheduler,
                           scaled_base_lr,
)
from .optimizer import (
                           PADDLE_ADAMW_BETAS,
                           PADDLE_ADAMW_EPS,
                           build_adamw,
                           build_mmdet_adamw,
                           build_sgd,
                           no_weight_decay_names,
                           norm_and_bias_names,
                           param_groups,
                           param_lr_mults,
                           set_lr,
)

__all__ = ["LR_DECAYS", "WARMUPS", "CosineDecay", "ExpWarmup", "LearningRate", "LinearWarmup",
           "LinearWarmupFlatCosine", "build_mmdet_adamw", "norm_and_bias_names",
           "PiecewiseDecay", "build_learning_rate", "build_lr_scheduler", "scaled_base_lr",
           "PADDLE_ADAMW_BETAS", "PADDLE_ADAMW_EPS", "build_adamw", "build_sgd",
           "no_weight_decay_names", "param_groups", "param_lr_mults", "set_lr"]

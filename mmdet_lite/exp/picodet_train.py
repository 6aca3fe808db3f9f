"""PicoDet's optimizer and LR schedule as PaddleDetection's ``optimizer_300e.yml`` builds them.

``PicoDetExp.get_optimizer`` / ``get_lr_scheduler`` delegate here. Fields read from the exp:
``base_lr``, ``train_batch_size``, ``ref_num_devices``, ``momentum``, ``weight_decay``,
``lr_decay`` and ``warmup`` (dicts with a ``name``, as ``LearningRate.schedulers`` in the YAML).
"""
import torch

from mmdet_lite.core.optim import build_learning_rate, param_groups

__all__ = ["build_optimizer", "build_lr_scheduler", "scaled_base_lr", "NO_WEIGHT_DECAY"]

# Parameters to which ppdet gives their own ``L2Decay(0.0)`` (so the optimizer's L2 factor skips
# them), as our names: BatchNorm of LCNet's ConvBNLayer, of LCPAN's ConvBNLayer blocks (not its
# DPModule / ConvNormLayer convs, not CSPPAN) and of PicoFeat's ConvNormLayer (incl. its SE).
NO_WEIGHT_DECAY = (
    r"^backbone\..*\.bn\.(weight|bias)$",
    r"^neck\.(top_down|bottom_up)_blocks\.\d+\.\d+\.(dw|pw)_conv\.bn\.(weight|bias)$",
    r"^head\.conv_feat\.(cls|reg)_conv_(dw|pw)\.\d+\.\d+\.bn\.(weight|bias)$",
    r"^head\.conv_feat\.se\.\d+\.conv\.bn\.(weight|bias)$",
)


def build_optimizer(exp, model):
    """ppdet ``OptimizerBuilder``: ``Momentum(momentum)`` with ``L2Decay(weight_decay)``.

    Paddle's L2 regulariser adds ``weight_decay * param`` to the gradient before the momentum
    update, as ``torch.optim.SGD(weight_decay=...)`` does; the parameters of ``NO_WEIGHT_DECAY``
    (Paddle's ``ParamAttr(regularizer=L2Decay(0.0))``) get none. The LR is set by the schedule
    before every step.
    """
    return torch.optim.SGD(param_groups(model, exp.weight_decay, NO_WEIGHT_DECAY), lr=exp.base_lr,
                           momentum=exp.momentum, dampening=0.0, nesterov=False)


def scaled_base_lr(exp, batch_size=None):
    """``base_lr`` scaled linearly from the total batch it was tuned for to ``batch_size``.

    ``None`` or the reference batch (``train_batch_size * ref_num_devices``) keeps ``base_lr``
    exactly.
    """
    reference = exp.train_batch_size * exp.ref_num_devices
    if batch_size is None or batch_size == reference:
        return exp.base_lr
    return exp.base_lr * batch_size / reference


def build_lr_scheduler(exp, iters_per_epoch, batch_size=None):
    """ppdet ``LearningRate`` (``lr_decay`` + ``warmup``) per iteration, for ``iters_per_epoch``
    steps per epoch and a total batch of ``batch_size`` images (``None``: the reference batch).

    ``lr_decay["max_epochs"] = None`` (a derived default) means the exp's ``max_epoch``.
    """
    decay = dict(exp.lr_decay)
    if "max_epochs" in decay and decay["max_epochs"] is None:
        decay["max_epochs"] = exp.max_epoch
    return build_learning_rate(scaled_base_lr(exp, batch_size), decay, exp.warmup,
                               iters_per_epoch)

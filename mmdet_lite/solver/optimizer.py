"""Parameter groups and optimizers as PaddleDetection's ``OptimizerBuilder`` makes them.

A parameter's group is its ``(lr_mult, weight_decay)``. ``lr_mult`` is Paddle's per-parameter LR
factor (``ParamAttr(learning_rate=...)``): a module declares it with a ``param_lr_mults()`` method
returning ``{name relative to itself: multiplier}``; everything else has 1. A parameter gets no
weight decay when a module lists it in a ``no_weight_decay()`` method (names relative to itself)
or its full name matches one of the caller's regexes (Paddle's ``ParamAttr(regularizer=
L2Decay(0.0))``). Frozen parameters (``requires_grad=False``) are left out, as Paddle's optimizer
skips them. The schedule writes ``lr * lr_mult`` into every group before each step (``set_lr``).
"""
import re
from collections import OrderedDict

import torch

__all__ = ["param_groups", "param_lr_mults", "no_weight_decay_names", "set_lr", "build_sgd",
           "build_adamw", "norm_and_bias_names", "build_mmdet_adamw", "PADDLE_ADAMW_BETAS",
           "PADDLE_ADAMW_EPS"]

_NORM_TYPES = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.instancenorm._InstanceNorm,
               torch.nn.GroupNorm, torch.nn.LayerNorm)

PADDLE_ADAMW_BETAS = (0.9, 0.999)  # paddle.optimizer.AdamW defaults (beta1, beta2)
PADDLE_ADAMW_EPS = 1e-8  # paddle.optimizer.AdamW epsilon


def _declared(model, method_name):
    """``(full name, value)`` pairs of every submodule's ``method_name()``
    (names relative to it)."""
    for prefix, module in model.named_modules():
        method = getattr(module, method_name, None)
        if callable(method):
            items = method()
            items = items.items() if isinstance(items, dict) else ((name, None) for name in items)
            for name, value in items:
                yield (f"{prefix}.{name}" if prefix else name), value


def no_weight_decay_names(model):
    """Full names of the parameters that some submodule lists in its ``no_weight_decay()``."""
    return {name for name, _ in _declared(model, "no_weight_decay")}


def param_lr_mults(model):
    """``{full parameter name: LR multiplier}`` from every submodule's ``param_lr_mults()``;
    parameters nobody lists are absent (multiplier 1)."""
    return {name: float(mult) for name, mult in _declared(model, "param_lr_mults")}


def param_groups(model, weight_decay, no_weight_decay=(), declared_no_decay=True):
    """Trainable parameters of ``model`` grouped by ``(lr_mult, weight_decay)``, in model order.

    Every trainable parameter is decayed by ``weight_decay`` except those of ``no_weight_decay()``
    methods (Paddle's per-parameter ``L2Decay(0.0)``; with ``declared_no_decay``) and those whose
    full name matches a regex of ``no_weight_decay`` (``re.search``).
    Returns a list of dicts ``{"params", "names", "lr_mult", "weight_decay"}``; ``names`` lets
    callers log and test the grouping. A ``no_weight_decay()`` name that is no parameter is a
    ``ValueError``.
    """
    own = dict(model.named_parameters())
    skip = no_weight_decay_names(model) if declared_no_decay else set()
    unknown = sorted(skip - set(own))
    if unknown:
        raise ValueError(f"no_weight_decay() names parameters that do not exist: {unknown[:8]}")
    patterns = [re.compile(p) for p in no_weight_decay or ()]
    mults = param_lr_mults(model)
    groups = OrderedDict()
    for name, param in own.items():
        if not param.requires_grad:
            continue
        skipped = name in skip or any(p.search(name) for p in patterns)
        key = (mults.get(name, 1.0), 0.0 if skipped else float(weight_decay))
        group = groups.setdefault(key, dict(params=[], names=[], lr_mult=key[0],
                                            weight_decay=key[1]))
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())


def set_lr(optimizer, lr):
    """Set every group's LR to ``lr * group.get("lr_mult", 1.0)``
    (Paddle's per-parameter LR factor)."""
    for group in optimizer.param_groups:
        mult = group.get("lr_mult", 1.0)
        group["lr"] = lr if mult == 1.0 else lr * mult


def _groups_at(model, base_lr, weight_decay, no_weight_decay, declared_no_decay=True):
    groups = param_groups(model, weight_decay, no_weight_decay, declared_no_decay)
    for group in groups:
        group["lr"] = base_lr * group["lr_mult"]
    return groups


def build_sgd(model, base_lr, momentum, weight_decay, no_weight_decay=()):
    """ppdet's ``Momentum(momentum)`` with ``L2Decay(weight_decay)`` as ``torch.optim.SGD``.

    Paddle's L2 regulariser adds ``weight_decay * param`` to the gradient before the momentum
    update, as ``torch.optim.SGD(weight_decay=...)`` does; the groups of ``param_groups`` decide
    which parameters get none. The LR is set by the schedule before every step.
    """
    return torch.optim.SGD(_groups_at(model, base_lr, weight_decay, no_weight_decay), lr=base_lr,
                           momentum=momentum, dampening=0.0, nesterov=False)


def build_adamw(model, base_lr, weight_decay, no_weight_decay=(), betas=PADDLE_ADAMW_BETAS,
                eps=PADDLE_ADAMW_EPS):
    """ppdet's ``AdamW(weight_decay)`` (``regularizer: false``) as ``torch.optim.AdamW``.

    The decay is AdamW's decoupled one, applied to every trainable parameter outside
    ``no_weight_decay`` (a module's ``no_weight_decay()`` does not count: Paddle's ``L2Decay(0.0)``
    on a parameter is an L2 regulariser term, which AdamW's decoupled decay ignores); Paddle
    multiplies it by the parameter's own LR (``lr * lr_mult``), as torch does with a group LR.
    """
    return torch.optim.AdamW(_groups_at(model, base_lr, weight_decay, no_weight_decay, False),
                             lr=base_lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


def norm_and_bias_names(model):
    """Full names of every norm layer's parameters and of every other module's ``bias``: what
    mmengine's ``paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0)`` exempts from decay."""
    names = []
    for prefix, module in model.named_modules():
        is_norm = isinstance(module, _NORM_TYPES)
        for name, _ in module.named_parameters(recurse=False):
            if is_norm or name == "bias":
                names.append(f"{prefix}.{name}" if prefix else name)
    return names


def build_mmdet_adamw(model, base_lr, weight_decay):
    """mmengine's ``OptimWrapper(AdamW(lr, weight_decay), paramwise_cfg=dict(norm_decay_mult=0,
    bias_decay_mult=0, bypass_duplicate=True))`` (mmdet's RTMDet): ``torch.optim.AdamW`` (torch's
    default betas and eps, as mmengine builds it), no decay on norm parameters and biases; a
    parameter shared by several modules is one entry."""
    exempt = [f"^{re.escape(name)}$" for name in norm_and_bias_names(model)]
    return build_adamw(model, base_lr, weight_decay, exempt)

"""RT-DETR's optimizer and LR schedule as ppdet builds them from ``rtdetr/_base_/optimizer_6x.yml``.

``RTDETRExp.get_optimizer`` / ``get_lr_scheduler`` delegate here. ``OptimizerBuilder`` there is
``AdamW(weight_decay=1e-4)`` with ``regularizer: false`` and no ``param_groups``, so Paddle applies
AdamW's decoupled decay to *every* trainable parameter (norms and embeddings included: the
``L2Decay(0.0)`` that ppdet's modules put on their norms is an L2 regulariser term, zero, and does
not switch AdamW's decay off). Per-parameter learning rates are Paddle's ``ParamAttr(
learning_rate=...)``: modules declare them with ``param_lr_mults()`` (the backbones' stage
multipliers); everything else has 1. ``clip_grad_by_norm: 0.1`` is ``exp.clip_grad_norm``, which the
trainer applies after unscaling (Paddle: ``ClipGradByGlobalNorm``).
"""
import re
from collections import OrderedDict

import torch

from .picodet_train import build_lr_scheduler, scaled_base_lr

__all__ = ["build_optimizer", "build_lr_scheduler", "scaled_base_lr", "param_lr_mults",
           "adamw_param_groups", "ADAMW_BETAS", "ADAMW_EPS"]

ADAMW_BETAS = (0.9, 0.999)  # paddle.optimizer.AdamW defaults (beta1, beta2)
ADAMW_EPS = 1e-8  # paddle.optimizer.AdamW epsilon


def param_lr_mults(model):
    """``{full parameter name: LR multiplier}`` from every submodule's ``param_lr_mults()``
    (names relative to that submodule); parameters nobody lists are absent (multiplier 1)."""
    mults = {}
    for prefix, module in model.named_modules():
        method = getattr(module, "param_lr_mults", None)
        if callable(method):
            for name, mult in method().items():
                mults[f"{prefix}.{name}" if prefix else name] = float(mult)
    return mults


def adamw_param_groups(model, weight_decay, no_weight_decay=()):
    """Trainable parameters grouped by ``(lr_mult, weight_decay)``, in model order.

    Every trainable parameter is decayed by ``weight_decay`` except names matching a regex of
    ``no_weight_decay`` (``re.search``; Paddle's config: none). Frozen parameters
    (``requires_grad=False``) are left out, as Paddle's optimizer skips them. Returns a list of
    dicts ``{"params", "names", "lr_mult", "weight_decay"}``; ``set_lr`` multiplies the schedule's
    LR by ``lr_mult``.
    """
    mults = param_lr_mults(model)
    patterns = [re.compile(p) for p in no_weight_decay or ()]
    groups = OrderedDict()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = 0.0 if any(p.search(name) for p in patterns) else float(weight_decay)
        key = (mults.get(name, 1.0), decay)
        group = groups.setdefault(key, dict(params=[], names=[], lr_mult=key[0], weight_decay=decay))
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())


def build_optimizer(exp, model):
    """``torch.optim.AdamW`` as ppdet's ``OptimizerBuilder`` (AdamW, Paddle's betas and epsilon).

    Reads ``exp.base_lr`` (replaced by the schedule before every step), ``exp.weight_decay`` and
    ``exp.no_weight_decay``. Paddle's AdamW multiplies the decay by the parameter's own LR
    (``lr * lr_mult``), as torch's AdamW does with a group LR.
    """
    groups = adamw_param_groups(model, exp.weight_decay, exp.no_weight_decay)
    for group in groups:
        group["lr"] = exp.base_lr * group["lr_mult"]
    return torch.optim.AdamW(groups, lr=exp.base_lr, betas=ADAMW_BETAS, eps=ADAMW_EPS,
                             weight_decay=exp.weight_decay)

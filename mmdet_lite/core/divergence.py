"""Finding where a training run diverged: non-finite losses, predictions and saved tensors.

Family-neutral: the checks look at the dict of losses a model returns, at the outputs of every
module of a model, and at every floating-point tensor of a (nested) checkpoint dict.
"""
import os

import torch

from mmdet_lite.utils.checkpoint import checkpoint_epoch

__all__ = ["forward_losses", "nonfinite_loss", "nonfinite_prediction", "nonfinite_tensors",
           "nonfinite_saved_state", "short_list", "last_good_checkpoint"]

_MAX_LISTED = 4


def short_list(names, limit=_MAX_LISTED):
    """``"a, b, c, ... 5 more"``: the first ``limit`` names and how many are left out."""
    names = list(names)
    head = ", ".join(names[:limit])
    return head + (f", ... {len(names) - limit} more" if len(names) > limit else "")


def _is_bad(tensor):
    return tensor.is_floating_point() and not bool(torch.isfinite(tensor.detach()).all())


def nonfinite_loss(losses):
    """What is wrong with a model's dict of losses (``total_loss`` plus scalar terms), or None.

    ``"loss is nan"`` when the total is not finite, else ``"loss term loss_vfl is inf"`` for the
    first scalar term that is not.
    """
    total = losses["total_loss"]
    if _is_bad(total):
        return f"loss is {total.detach().float().reshape(()).item()}"
    for name, value in losses.items():
        if torch.is_tensor(value) and value.numel() == 1 and _is_bad(value):
            return f"loss term {name} is {value.detach().float().reshape(()).item()}"
    return None


def _tensors(obj):
    if torch.is_tensor(obj):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _tensors(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _tensors(value)


class _FirstNonFinite(Exception):
    def __init__(self, module_name):
        super().__init__(module_name)
        self.module_name = module_name


def _has_nan(tensor):
    return tensor.is_floating_point() and bool(torch.isnan(tensor.detach()).any())


def nonfinite_prediction(model, *inputs):
    """Name of the first module of ``model`` whose output holds NaN when it runs ``inputs``
    (``"the input"`` when an input is not finite), or None when no output does. (Infinities are
    legitimate in module outputs: attention masks, invalid anchors.)

    The forward runs again without gradients, each module's outputs checked as they appear; the
    call stops at the first non-finite one, so a loss that rejects NaN inputs never sees them.
    Training-mode side effects (BatchNorm statistics) happen: call it only on a run that stops.
    """
    if any(_is_bad(t) for t in _tensors(inputs)):
        return "the input"

    def check(module_name):
        def hook(module, args, output):
            if any(_has_nan(t) for t in _tensors(output)):
                raise _FirstNonFinite(module_name)
        return hook

    handles = [m.register_forward_hook(check(name or type(model).__name__))
               for name, m in model.named_modules()]
    try:
        with torch.no_grad():
            model(*inputs)
    except _FirstNonFinite as found:
        return found.module_name
    except Exception:  # the forward fails for another reason: not a divergence
        return None
    finally:
        for handle in handles:
            handle.remove()
    return None


def forward_losses(model, raw_model, images, targets):
    """``(model(images, targets), None)``; ``(None, message)`` when the forward raised a
    ``RuntimeError`` / ``ValueError`` (such as BCE's range check) because a module of
    ``raw_model`` (``model`` without its DDP wrapper) predicted NaN. Other failures propagate."""
    try:
        return model(images, targets), None
    except (RuntimeError, ValueError) as err:
        module = nonfinite_prediction(raw_model, images, targets)
        if module is None:
            raise
        first_line = (str(err).strip().splitlines() or [""])[0][:120]
        return None, (f"the predictions are not finite (NaN from {module} on; the loss raised "
                      f"{type(err).__name__}: {first_line})")


def nonfinite_saved_state(checkpoint):
    """``"65 tensors to save are not finite (a, b, ...)"`` for a checkpoint dict, or None."""
    bad = nonfinite_tensors(checkpoint)
    return f"{len(bad)} tensors to save are not finite ({short_list(bad)})" if bad else None


def nonfinite_tensors(obj, prefix=""):
    """Dotted names of the floating-point tensors in a nested dict / list that are not finite."""
    if torch.is_tensor(obj):
        return [prefix] if _is_bad(obj) else []
    items = obj.items() if isinstance(obj, dict) else (
        enumerate(obj) if isinstance(obj, (list, tuple)) else ())
    found = []
    for key, value in items:
        found += nonfinite_tensors(value, f"{prefix}.{key}" if prefix else str(key))
    return found


def last_good_checkpoint(save_dir):
    """``"the last good checkpoint is <save_dir>/latest_ckpt.pth (epoch N)"``, or that none was
    written yet: what a stopped run can continue from with ``--resume``."""
    latest = os.path.join(save_dir, "latest_ckpt.pth")
    if not os.path.exists(latest):
        return "no checkpoint was written yet"
    epoch = checkpoint_epoch(latest)
    return f"the last good checkpoint is {latest}" + (f" (epoch {epoch})" if epoch else "")

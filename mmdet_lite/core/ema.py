"""Exponential moving average of a model's weights, as PaddleDetection's ``ModelEMA``."""
import math

import torch

__all__ = ["ModelEMA"]


def _frozen_tensor_names(model):
    """State-dict names of the tensors training never changes (Paddle's stop_gradient params)."""
    from mmdet_lite.models.layers import FrozenBatchNorm2d

    names = {name for name, p in model.named_parameters() if not p.requires_grad}
    for prefix, module in model.named_modules():
        if isinstance(module, FrozenBatchNorm2d):
            names |= {f"{prefix}.weight" if prefix else "weight",
                      f"{prefix}.bias" if prefix else "bias"}
    return names


class ModelEMA:
    """ppdet's ``ModelEMA`` over every floating entry of ``model.state_dict()`` (BN statistics too).

    The averages start at zero and are bias-corrected when read::

        decay_t = min(decay, (1 + t) / (10 + t))      # "threshold" (t = updates so far)
        ema = decay_t * ema + (1 - decay_t) * weight   # update(), after each optimizer step
        averaged = ema / (1 - decay_last ** steps)     # averaged()

    (``"exponential"``: ``decay * (1 - exp(-(t + 1) / 2000))``, no correction; ``"normal"``: the
    constant ``decay``; ``"exp_momentum"``: mmdet's ``ExpMomentumEMA(momentum=1 - decay,
    gamma=2000, update_buffers=True)``, the first update copies the weights, update ``t >= 1`` is
    ``exponential``'s, no correction.) Keys containing a ``black_list`` entry are not averaged:
    they read the live model value. ``filter_no_grad`` (ppdet develop's ``ema_filter_no_grad``)
    black-lists the frozen tensors too: parameters with ``requires_grad`` False and the affine
    ``weight``/``bias`` of ``FrozenBatchNorm2d`` (parameters with ``stop_gradient`` in Paddle);
    running statistics are still averaged, as Paddle's. Integer buffers (``num_batches_tracked``)
    follow the model (mmdet's keep their initial value; nothing reads them).
    ``snapshot()`` is ppdet's ``apply()``: it also counts snapshot epochs and, every
    ``cycle_epoch`` of them, restarts the average.

    Args:
        model: the bare model (not the DDP wrapper), already on its device.
    """

    def __init__(self, model, decay=0.9998, decay_type="threshold", cycle_epoch=-1, black_list=None,
                 filter_no_grad=False):
        if decay_type not in ("threshold", "exponential", "normal", "exp_momentum"):
            raise ValueError("ema_decay_type must be threshold, exponential, normal or "
                             f"exp_momentum, got {decay_type!r}")
        self.model = model
        self.decay = decay
        self.decay_type = decay_type
        self.cycle_epoch = cycle_epoch
        keys = model.state_dict().keys()
        self.black_list = {k for k in keys for pattern in (black_list or ()) if pattern in k}
        if filter_no_grad:
            self.black_list |= _frozen_tensor_names(model)
        self.step = 0
        self.epoch = 0
        self.last_decay = None
        self.shadow = {}
        self.reset()

    def _averaged_keys(self, state):
        return [k for k, v in state.items() if v.is_floating_point() and k not in self.black_list]

    def reset(self):
        """Zero the averages and the counters (ppdet's ``reset``)."""
        self.step = 0
        self.epoch = 0
        state = self.model.state_dict()
        self.shadow = {k: torch.zeros_like(state[k]) for k in self._averaged_keys(state)}

    def current_decay(self):
        if self.decay_type == "threshold":
            return min(self.decay, (1 + self.step) / (10 + self.step))
        if self.decay_type == "exp_momentum" and self.step == 0:
            return 0.0
        if self.decay_type in ("exponential", "exp_momentum"):
            return self.decay * (1 - math.exp(-(self.step + 1) / 2000))
        return self.decay

    @torch.no_grad()
    def update(self):
        """Fold the model's current weights into the averages (once per optimizer step)."""
        decay = self.current_decay()
        self.last_decay = decay
        state = self.model.state_dict()
        names = list(self.shadow)
        shadow = [self.shadow[k] for k in names]
        torch._foreach_mul_(shadow, decay)
        torch._foreach_add_(shadow,
                            torch._foreach_mul([state[k].detach() for k in names], 1 - decay))
        self.step += 1

    @torch.no_grad()
    def averaged(self):
        """The averaged weights as a full state dict
        (bias-corrected; the model's own before any update)."""
        state = self.model.state_dict()
        if self.step == 0:
            return {k: v.detach().clone() for k, v in state.items()}
        correct = self.decay_type not in ("exponential", "exp_momentum")
        scale = 1 - self.last_decay ** self.step
        out = {}
        for k, v in state.items():
            if k in self.shadow:
                out[k] = self.shadow[k] / scale if correct else self.shadow[k].clone()
            else:
                out[k] = v.detach().clone()
        return out

    def snapshot(self):
        """``averaged()``, then count a snapshot epoch and restart after ``cycle_epoch`` of them."""
        out = self.averaged()
        if self.step > 0:
            self.epoch += 1
            if 0 < self.cycle_epoch == self.epoch:
                self.reset()
        return out

    def state_dict(self):
        return dict(shadow=dict(self.shadow), step=self.step, epoch=self.epoch,
                    last_decay=self.last_decay, decay=self.decay, decay_type=self.decay_type)

    def load_state_dict(self, state):
        missing = set(self.shadow) - set(state["shadow"])
        if missing:
            raise KeyError(f"EMA state lacks {len(missing)} averaged tensors, "
                           f"e.g. {sorted(missing)[:4]}")
        for k in self.shadow:
            self.shadow[k] = state["shadow"][k].to(self.shadow[k].device, self.shadow[k].dtype)
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.last_decay = state["last_decay"]

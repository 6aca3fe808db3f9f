"""PaddleDetection's per-iteration learning-rate schedules (``ppdet.optimizer.LearningRate``).

The schedules reproduce ppdet's exactly (same float operations, same piecewise look-up): a decay
(``CosineDecay`` / ``PiecewiseDecay``) composed with an optional warmup (``LinearWarmup`` /
``ExpWarmup``), evaluated at the global iteration ``t`` (0-based, the LR that the ``t``-th optimizer
step uses). They are stateless functions of ``t``, so resuming only needs the iteration counter.
``build_lr_scheduler(exp, ...)`` makes the schedule of an exp's ``base_lr``, ``lr_decay`` and
``warmup`` fields, its LR scaled linearly to the total batch.
"""
import bisect
import math

from mmdet_lite.utils.registry import Registry

from .optimizer import set_lr

__all__ = ["LinearWarmup", "ExpWarmup", "CosineDecay", "PiecewiseDecay", "LearningRate",
           "LR_DECAYS", "WARMUPS", "build_learning_rate", "build_lr_scheduler", "scaled_base_lr",
           "LinearWarmupFlatCosine"]

# ``exp.lr_decay`` / ``exp.warmup`` dicts name one of these (``dict(name="CosineDecay", ...)``).
LR_DECAYS = Registry("lr_decay")
WARMUPS = Registry("warmup")


class Warmup:
    """A warmup over ``W = epochs * iters_per_epoch`` steps when ``epochs`` is set, else ``steps``
    (at least 1); ``value(base_lr, i, W)`` is the LR of step ``i`` in [0, W]."""

    def num_steps(self, iters_per_epoch):
        steps = self.epochs * iters_per_epoch if self.epochs is not None else self.steps
        return max(int(steps), 1)


@WARMUPS.register
class LinearWarmup(Warmup):
    """ppdet ``LinearWarmup``: ``lr_i = base_lr * (start_factor * (1 - i / W) + i / W)``,
    i in [0, W]."""

    def __init__(self, steps=500, start_factor=1.0 / 3, epochs=None):
        self.steps = steps
        self.start_factor = start_factor
        self.epochs = epochs

    def value(self, base_lr, i, num_steps):
        alpha = i / num_steps
        factor = self.start_factor * (1 - alpha) + alpha
        return base_lr * factor


@WARMUPS.register
class ExpWarmup(Warmup):
    """ppdet ``ExpWarmup``: ``lr_i = base_lr * (i / W) ** power``, i in [0, W]."""

    def __init__(self, steps=1000, epochs=None, power=2):
        self.steps = steps
        self.epochs = epochs
        self.power = power

    def value(self, base_lr, i, num_steps):
        factor = (i / float(num_steps)) ** self.power
        return base_lr * factor


@LR_DECAYS.register
class CosineDecay:
    """ppdet ``CosineDecay`` over ``max_epochs`` (computed per iteration), optional floor and
    plateau.

    After a warmup of ``W`` steps: ``lr_i = min_lr + (base_lr - min_lr) * 0.5 * (cos((i - W) * pi /
    (max_iters - W - plateau_iters)) + 1)`` until the plateau, ``min_lr`` on it, and the last value
    held after ``max_iters``. Without warmup and plateau it is Paddle's ``CosineAnnealingDecay``
    (period ``2 * max_iters``; closed form of Paddle's recursion).
    """

    def __init__(self, max_epochs=1000, use_warmup=True, min_lr_ratio=0.0, last_plateau_epochs=0):
        self.max_epochs = max_epochs
        self.use_warmup = use_warmup
        self.min_lr_ratio = min_lr_ratio
        self.last_plateau_epochs = last_plateau_epochs

    def _cosine(self, base_lr, i, start, iters_per_epoch):
        max_iters = self.max_epochs * int(iters_per_epoch)
        plateau = self.last_plateau_epochs * int(iters_per_epoch)
        min_lr = base_lr * self.min_lr_ratio
        if i < max_iters - plateau:
            return min_lr + (base_lr - min_lr) * 0.5 * (math.cos(
                (i - start) * math.pi / (max_iters - start - plateau)) + 1)
        return min_lr

    def after_warmup(self, base_lr, t, warmup_steps, warmup_last, iters_per_epoch):
        max_iters = self.max_epochs * int(iters_per_epoch)
        if max_iters <= warmup_steps:
            return warmup_last
        return self._cosine(base_lr, min(t, max_iters - 1), warmup_steps, iters_per_epoch)

    def without_warmup(self, base_lr, t, iters_per_epoch):
        max_iters = self.max_epochs * int(iters_per_epoch)
        if self.last_plateau_epochs * int(iters_per_epoch) > 0:
            return self._cosine(base_lr, min(t, max_iters - 1), 0, iters_per_epoch)
        min_lr = base_lr * self.min_lr_ratio
        if t == 0:
            return base_lr
        return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * t / max_iters)) / 2


@LR_DECAYS.register
class PiecewiseDecay:
    """ppdet ``PiecewiseDecay``: ``base_lr * gamma[k]`` after the ``k``-th milestone (in epochs).

    ``gamma`` a number means ``[gamma, gamma / 10, ...]``, one per milestone.
    """

    def __init__(self, gamma=(0.1, 0.01), milestones=(8, 11), use_warmup=True):
        milestones = list(milestones)
        if isinstance(gamma, (list, tuple)):
            self.gamma = list(gamma)
        else:
            self.gamma = [gamma / 10 ** i for i in range(len(milestones))]
        self.milestones = milestones
        self.use_warmup = use_warmup

    def _bounds(self, iters_per_epoch):
        return [int(iters_per_epoch) * m for m in self.milestones]

    def after_warmup(self, base_lr, t, warmup_steps, warmup_last, iters_per_epoch):
        k = bisect.bisect_right(self._bounds(iters_per_epoch), t)
        values = [warmup_last] + [base_lr * g for g in self.gamma]
        return values[min(k, len(values) - 1)]

    def without_warmup(self, base_lr, t, iters_per_epoch):
        k = bisect.bisect_right(self._bounds(iters_per_epoch), t)
        values = [base_lr] + [base_lr * g for g in self.gamma]
        return values[min(k, len(values) - 1)]


class LearningRate:
    """ppdet ``LearningRate``: ``decay`` composed with ``warmup`` (or ``None``), per iteration.

    ``lr = schedule(t)`` for the global iteration ``t``; ``schedule.step(optimizer, t)`` also writes
    it into the optimizer (see ``set_lr``). The warmup covers steps ``[0, W)``; from ``W`` on the
    decay applies, as ppdet's concatenated ``PiecewiseDecay`` table does.
    """

    def __init__(self, base_lr, decay, warmup=None, iters_per_epoch=1):
        self.base_lr = float(base_lr)
        self.decay = decay
        self.warmup = warmup
        self.iters_per_epoch = int(iters_per_epoch)

    @property
    def uses_warmup(self):
        return self.warmup is not None and getattr(self.decay, "use_warmup", True)

    def __call__(self, t):
        if not self.uses_warmup:
            return self.decay.without_warmup(self.base_lr, t, self.iters_per_epoch)
        steps = self.warmup.num_steps(self.iters_per_epoch)
        if t < steps:
            return self.warmup.value(self.base_lr, t, steps)
        last = self.warmup.value(self.base_lr, steps, steps)
        return self.decay.after_warmup(self.base_lr, t, steps, last, self.iters_per_epoch)

    def step(self, optimizer, t):
        """Write the LR of iteration ``t`` into ``optimizer``; return it."""
        lr = self(t)
        set_lr(optimizer, lr)
        return lr

    def state_dict(self):
        """The configuration (the schedule has no other state: it is a function of ``t``)."""
        def describe(obj):
            return None if obj is None else dict(name=type(obj).__name__, **vars(obj))

        return dict(base_lr=self.base_lr, iters_per_epoch=self.iters_per_epoch,
                    decay=describe(self.decay), warmup=describe(self.warmup))

    def load_state_dict(self, state):
        """Nothing to restore; returns the keys whose values differ from ``state``
        (for a warning)."""
        own = self.state_dict()
        return sorted(k for k in own if state.get(k) != own[k])


def build_learning_rate(base_lr, decay, warmup, iters_per_epoch, owner=None):
    """``LearningRate`` from Paddle-style dicts:
    ``decay = dict(name="CosineDecay", max_epochs=300)``,
    ``warmup = dict(name="LinearWarmup", steps=300, start_factor=0.1)`` or ``None``.

    An unknown name or argument is a ``UserError`` naming ``lr_decay`` / ``warmup`` (and ``owner``).
    """
    return LearningRate(base_lr, LR_DECAYS.build(decay, owner),
                        None if warmup is None else WARMUPS.build(warmup, owner), iters_per_epoch)


def scaled_base_lr(exp, batch_size=None):
    """``exp.base_lr`` scaled linearly from the total batch it was tuned for to ``batch_size``.

    ``None`` or the reference batch (``exp.train_batch_size * exp.ref_num_devices``) keeps
    ``base_lr`` exactly.
    """
    reference = exp.train_batch_size * exp.ref_num_devices
    if batch_size is None or batch_size == reference:
        return exp.base_lr
    return exp.base_lr * batch_size / reference


def build_lr_scheduler(exp, iters_per_epoch, batch_size=None):
    """ppdet ``LearningRate`` of ``exp.lr_decay`` + ``exp.warmup`` per iteration, for
    ``iters_per_epoch`` steps per epoch and a total batch of ``batch_size`` images (``None``: the
    reference batch, see ``scaled_base_lr``).

    ``lr_decay["max_epochs"] = None`` (a derived default) means the exp's ``max_epoch``.
    """
    decay = dict(exp.lr_decay)
    if "max_epochs" in decay and decay["max_epochs"] is None:
        decay["max_epochs"] = exp.max_epoch
    return build_learning_rate(scaled_base_lr(exp, batch_size), decay, exp.warmup,
                               iters_per_epoch, owner=exp.exp_name)


class LinearWarmupFlatCosine:
    """mmengine's ``[LinearLR(start_factor, by_epoch=False, begin=0, end=warmup_iters),
    CosineAnnealingLR(eta_min, begin=B, end=max_epochs, T_max=T, by_epoch=True,
    convert_to_iter_based=True)]`` per iteration: mmdet's RTMDet schedule with ``B = T =
    max_epochs // 2`` (``cosine_begin_epoch``, ``cosine_period_epochs``; an odd ``max_epochs``
    runs past the period, as mmengine's does).

    ``schedule(t)`` is the LR of the ``t``-th optimizer step (0-based): the value after ``t``
    scheduler steps. It runs mmengine's chained updates in the same float operations (so the values
    are mmengine's, overlapping warmup and cosine included), caching the last step reached; it is a
    function of ``t`` alone, as resuming needs. ``eta_min = base_lr * eta_min_ratio``.
    """

    def __init__(self, base_lr, iters_per_epoch, max_epochs, warmup_iters=1000,
                 start_factor=1.0e-5, cosine_begin_epoch=None, cosine_period_epochs=None,
                 eta_min_ratio=0.05):
        self.base_lr = float(base_lr)
        self.iters_per_epoch = int(iters_per_epoch)
        self.max_epochs = int(max_epochs)
        self.warmup_iters = int(warmup_iters)
        self.start_factor = float(start_factor)
        self.cosine_begin_epoch = (self.max_epochs // 2 if cosine_begin_epoch is None
                                   else int(cosine_begin_epoch))
        self.cosine_period_epochs = (self.max_epochs // 2 if cosine_period_epochs is None
                                     else int(cosine_period_epochs))
        self.eta_min_ratio = float(eta_min_ratio)
        if self.warmup_iters < 1:
            raise ValueError(f"warmup_iters must be >= 1, got {warmup_iters}")
        self._cache = (0, self.base_lr * self.start_factor)  # mmengine's value at construction

    def _advance(self, step, lr):
        """The chained value at global scheduler step ``step`` (>= 1) from the value before it."""
        if step < self.warmup_iters:
            total, delta = self.warmup_iters - 1, 1.0 - self.start_factor
            lr = lr * (1. + delta / (total * self.start_factor + (step - 1) * delta))
        begin = self.cosine_begin_epoch * self.iters_per_epoch
        end = self.max_epochs * self.iters_per_epoch
        if begin <= step < end:
            period = self.cosine_period_epochs * self.iters_per_epoch or end - begin
            k, eta_min = step - begin, self.base_lr * self.eta_min_ratio
            if k == 0:
                return lr
            if (k - 1 - period) % (2 * period) == 0:
                return lr + (self.base_lr - eta_min) * (1 - math.cos(math.pi / period)) / 2
            lr = ((1 + math.cos(math.pi * k / period)) / (1 + math.cos(math.pi * (k - 1) / period))
                  * (lr - eta_min) + eta_min)
        return lr

    def __call__(self, t):
        t = max(int(t), 0)
        step, lr = self._cache
        if t < step:
            step, lr = 0, self.base_lr * self.start_factor
        while step < t:
            step += 1
            lr = self._advance(step, lr)
        self._cache = (step, lr)
        return lr

    def step(self, optimizer, t):
        """Write the LR of iteration ``t`` into ``optimizer``; return it."""
        lr = self(t)
        set_lr(optimizer, lr)
        return lr

    def state_dict(self):
        """The configuration (the schedule is a function of ``t``)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def load_state_dict(self, state):
        """Nothing to restore; returns the keys whose values differ from ``state``."""
        own = self.state_dict()
        return sorted(k for k in own if state.get(k) != own[k])

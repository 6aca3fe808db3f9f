"""Paddle-side reference for the RT-DETR optimizer test: AdamW + LR multipliers + global-norm clip +
the RT-DETR schedule + exponential ModelEMA, on a tiny net.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_adamw_ema.py OUT.npz

A tiny net (conv 3->4 without bias and ``ParamAttr(learning_rate=0.1)`` as a backbone stage, its
BatchNorm in eval mode with ``L2Decay(0.0)`` and LR 0.1 as ppdet's ResNet norms, an embedding added
to the pooled features, a LayerNorm with ``L2Decay(0.0)`` as RT-DETR's, a linear 4->3) with seeded
random weights is trained for ``STEPS`` steps on a fixed batch with ppdet's ``OptimizerBuilder``
built from RT-DETR's ``optimizer_6x.yml`` (``clip_grad_by_norm: 0.1``, ``regularizer: false``,
``AdamW``; the weight decay is raised to ``WEIGHT_DECAY`` so that a missed decay shows), ppdet's
``LearningRate`` (PiecewiseDecay + LinearWarmup, start_factor 0.001, ``WARMUP`` steps) and ppdet's
``ModelEMA(0.9999, "exponential")`` updated after every step, as ppdet's trainer does. Writes ``x``,
``y``, the initial state (``init/<name>``), the state after every step (``step<i>/<name>``), the EMA
weights (``ema/<name>``) and the LR of every step (``lr``). Names are Paddle's; linear weights are
(in, out). A second, longer EMA run (``LONG_STEPS`` updates of ``ModelEMA(0.9999, "exponential")``
on
a linear 4->3 whose weights are redrawn from ``default_rng(1)`` before every update) writes
``ema_long/<step>/<name>`` after the updates listed in ``LONG_CHECKPOINTS``.
"""
import contextlib
import io
import sys

import numpy as np

with contextlib.redirect_stdout(io.StringIO()):  # ppdet prints warnings on import
    import paddle
    import paddle.nn as nn
    from paddle import ParamAttr
    from paddle.regularizer import L2Decay
    from ppdet.optimizer import ModelEMA
    from ppdet.optimizer.optimizer import LearningRate, OptimizerBuilder

from paddle_training_record import init_weights, train_and_record

STEPS = 8
WARMUP = 4
WEIGHT_DECAY = 0.05
BASE_LR = 0.01
LONG_STEPS = 3000
LONG_CHECKPOINTS = (1, 10, 2000, 3000)


class TinyNet(nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(3, 4, 3, padding=1, weight_attr=ParamAttr(learning_rate=0.1),
                              bias_attr=False)
        norm_attr = dict(learning_rate=0.1, regularizer=L2Decay(0.0))
        self.bn = nn.BatchNorm2D(4, weight_attr=ParamAttr(**norm_attr),
                                 bias_attr=ParamAttr(**norm_attr))
        self.embed = nn.Embedding(2, 4)
        self.norm = nn.LayerNorm(4, weight_attr=ParamAttr(regularizer=L2Decay(0.0)),
                                 bias_attr=ParamAttr(regularizer=L2Decay(0.0)))
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = nn.functional.relu(self.bn(self.conv(x))).mean(axis=[2, 3])
        x = x + self.embed(paddle.to_tensor([0, 1]))
        return self.fc(self.norm(x))


def main():
    paddle.set_device("cpu")
    rng = np.random.default_rng(0)
    net = TinyNet()
    init = init_weights(net, rng)
    x = rng.normal(0.0, 1.0, (2, 3, 6, 6)).astype("float32")
    y = rng.normal(0.0, 1.0, (2, 3)).astype("float32")

    lr = LearningRate(BASE_LR, [dict(name="PiecewiseDecay", gamma=1.0, milestones=[100]),
                                dict(name="LinearWarmup", steps=WARMUP, start_factor=0.001)])(4)
    optimizer = OptimizerBuilder(clip_grad_by_norm=0.1, regularizer=False,
                                 optimizer=dict(type="AdamW", weight_decay=WEIGHT_DECAY))(lr, net)
    ema = ModelEMA(net, decay=0.9999, ema_decay_type="exponential")

    out = train_and_record(net, init, x, y, optimizer, lr, ema, STEPS,
                           lambda loss: loss.sum())
    out.update(long_ema_run())
    np.savez(sys.argv[1], **out)


def long_ema_run():
    net = nn.Linear(4, 3)
    ema = ModelEMA(net, decay=0.9999, ema_decay_type="exponential")
    rng = np.random.default_rng(1)
    out = {}
    for step in range(1, LONG_STEPS + 1):
        for value in net.state_dict().values():
            value.set_value(rng.normal(0.0, 1.0, value.shape).astype("float32"))
        ema.update()
        if step in LONG_CHECKPOINTS:
            out.update({f"ema_long/{step}/{k}": v.numpy() for k, v in ema.apply().items()})
    return out


if __name__ == "__main__":
    main()

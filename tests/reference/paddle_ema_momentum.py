"""Paddle-side reference for the optimizer / EMA tests: Momentum + L2Decay + ModelEMA on a tiny net.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_ema_momentum.py OUT.npz

A tiny net (conv 3->4 without bias, BatchNorm in eval mode whose weight and bias carry their own
``L2Decay(0.0)`` as ppdet's backbones set it, ReLU, global mean, linear 4->3) with seeded random
weights is trained for ``STEPS`` steps on a fixed batch: ppdet's ``OptimizerBuilder`` (Momentum 0.9,
global ``L2Decay(FACTOR)``), ppdet's ``LearningRate`` (CosineDecay + LinearWarmup) and ppdet's
``ModelEMA`` updated after every step, as ppdet's trainer does. Writes ``x``, ``y``, the initial
state (``init/<name>``), the state after every step (``step<i>/<name>``), the EMA weights of
``ema.apply()`` (``ema/<name>``) and the LR of every step (``lr``). Names are Paddle's; the
linear weight is Paddle's (in, out) layout.
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
STEPS_PER_EPOCH = 4
FACTOR = 0.05  # large, so that a parameter decayed by mistake is far outside the tolerance


class TinyNet(nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(3, 4, 3, padding=1, bias_attr=False)
        self.bn = nn.BatchNorm2D(4, weight_attr=ParamAttr(regularizer=L2Decay(0.0)),
                                 bias_attr=ParamAttr(regularizer=L2Decay(0.0)))
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = nn.functional.relu(self.bn(self.conv(x)))
        return self.fc(x.mean(axis=[2, 3]))


def main():
    paddle.set_device("cpu")
    rng = np.random.default_rng(0)
    net = TinyNet()
    init = init_weights(net, rng)
    x = rng.normal(0.0, 1.0, (2, 3, 6, 6)).astype("float32")
    y = rng.normal(0.0, 1.0, (2, 3)).astype("float32")

    lr = LearningRate(0.1, [dict(name="CosineDecay", max_epochs=2),
                            dict(name="LinearWarmup", steps=3, start_factor=0.1)])(STEPS_PER_EPOCH)
    optimizer = OptimizerBuilder(regularizer=dict(type="L2", factor=FACTOR),
                                 optimizer=dict(type="Momentum", momentum=0.9))(lr, net)
    ema = ModelEMA(net, decay=0.9998, ema_decay_type="threshold")

    out = train_and_record(net, init, x, y, optimizer, lr, ema, STEPS,
                           lambda loss: loss.mean())
    np.savez(sys.argv[1], **out)


if __name__ == "__main__":
    main()

"""Shared by the Paddle-side optimizer / EMA references (Paddle interpreter only, no torch).

``init_weights`` gives a tiny net seeded random weights; ``train_and_record`` runs ppdet's
optimizer, LR schedule and ``ModelEMA`` on a fixed batch, as ppdet's trainer orders them, and
records what the PyTorch tests compare.
"""
import numpy as np
import paddle


def init_weights(net, rng):
    """Seeded N(0, 0.5) weights (variances made positive);
    BatchNorm to eval mode. -> {name: array}"""
    init = {}
    for name, value in net.state_dict().items():
        array = rng.normal(0.0, 0.5, value.shape).astype("float32")
        if name.endswith("_variance"):
            array = np.abs(array) + 0.5
        value.set_value(array)
        init[name] = array
    net.bn.eval()
    return init


def train_and_record(net, init, x, y, optimizer, lr, ema, steps, reduce):
    """``steps`` steps of ``reduce((net(x) - y) ** 2)``; returns ``x``, ``y``, ``init/<name>``,
    ``step<i>/<name>`` after every step, ``ema/<name>`` of ``ema.apply()`` and ``lr`` per step."""
    out = {"x": x, "y": y}
    out.update({f"init/{k}": v for k, v in init.items()})
    lrs = []
    for step in range(steps):
        loss = reduce((net(paddle.to_tensor(x)) - paddle.to_tensor(y)) ** 2)
        loss.backward()
        optimizer.step()
        lrs.append(optimizer.get_lr())
        lr.step()
        optimizer.clear_grad()
        ema.update()
        out.update({f"step{step}/{k}": v.numpy() for k, v in net.state_dict().items()})
    out.update({f"ema/{k}": v.numpy() for k, v in ema.apply().items()})
    out["lr"] = np.array(lrs, dtype="float64")
    return out

"""Paddle-side reference for the LR schedule tests: ppdet's ``LearningRate``, step by step.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_lr_schedule.py CASES.json

``CASES.json`` is a list of cases ``{"name", "steps_per_epoch", "num_steps"}`` plus either
``"config"`` (a PaddleDetection YAML whose ``LearningRate`` is used) or ``"base_lr"`` and
``"schedulers"`` (dicts with ``name``, as in the YAML). For each case the script builds
``create('LearningRate')(steps_per_epoch)`` as ppdet's trainer does and records, for every
iteration, the LR the optimizer uses (``optimizer.get_lr()``) before ``lr.step()``. Prints one
JSON object ``{name: [lr, ...]}`` on stdout (floats round-trip exactly).
"""
import contextlib
import io
import json
import sys

with contextlib.redirect_stdout(io.StringIO()):  # ppdet prints warnings on import
    import paddle
    from ppdet.core.workspace import create, load_config
    from ppdet.optimizer.optimizer import LearningRate


def schedule(case):
    if "config" in case:
        cfg = load_config(case["config"])
        learning_rate = create("LearningRate")
        assert learning_rate.base_lr == cfg["LearningRate"]["base_lr"]
    else:
        learning_rate = LearningRate(case["base_lr"], case["schedulers"])
    return learning_rate(case["steps_per_epoch"])


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    net = paddle.nn.Linear(2, 2)
    out = {}
    for case in cases:
        with contextlib.redirect_stdout(io.StringIO()):
            lr = schedule(case)
        optimizer = paddle.optimizer.Momentum(learning_rate=lr, parameters=net.parameters())
        values = []
        for _ in range(case["num_steps"]):
            values.append(optimizer.get_lr())
            lr.step()
        out[case["name"]] = values
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

"""Paddle-side reference for the .pdparams reader and converter tests (needs paddle only, not
ppdet).

    python paddle_save_pdparams.py OUT_DIR

builds a small layer (Conv2D with bias -> BatchNorm2D -> global mean -> Linear), gives it random
weights and BN statistics, saves its state dict with ``paddle.save`` twice, to OUT_DIR/tiny.pdparams
(default pickle protocol) and OUT_DIR/tiny_protocol2.pdparams (protocol 2), saves the same arrays to
OUT_DIR/params.npz, and its eval-mode output on a random (2, 3, 8, 8) input to OUT_DIR/io.npz
(``input``, ``output``).
"""
import os
import sys

import numpy as np
import paddle
import paddle.nn as nn


class Tiny(nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2D(6)
        # square on purpose: a transposition cannot be guessed from shapes
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean(axis=[2, 3]))


def main(out_dir):
    paddle.set_device("cpu")
    rng = np.random.RandomState(0)
    model = Tiny()
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if name.endswith("_variance"):
            value = rng.uniform(0.5, 1.5, tensor.shape)
        else:
            value = rng.normal(0.0, 0.5, tensor.shape)
        tensor.set_value(value.astype(np.float32))
    model.eval()
    state = model.state_dict()
    paddle.save(state, os.path.join(out_dir, "tiny.pdparams"))
    paddle.save(state, os.path.join(out_dir, "tiny_protocol2.pdparams"), protocol=2)
    np.savez(os.path.join(out_dir, "params.npz"), **{k: v.numpy() for k, v in state.items()})
    image = rng.normal(0.0, 1.0, (2, 3, 8, 8)).astype(np.float32)
    with paddle.no_grad():
        output = model(paddle.to_tensor(image)).numpy()
    np.savez(os.path.join(out_dir, "io.npz"), input=image, output=output)


if __name__ == "__main__":
    main(sys.argv[1])

"""Paddle-side reference for the DCNv2 layout test: Paddle's modulated deformable convolution.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_deform_conv.py IN.npz OUT.npz

IN.npz holds ``x`` (N, Cin, H, W), ``offset`` (N, 2 k^2, Ho, Wo), ``mask`` (N, k^2, Ho, Wo),
``weight`` (Cout, Cin, k, k), ``bias`` (Cout,) and ``stride_padding_dilation`` (3,) int; OUT.npz
gets ``out``: ``paddle.vision.ops.deform_conv2d`` (the op of ppdet's ``DeformConv2D``, i.e.
``deformable_conv``) on them.
"""
import sys

import numpy as np
import paddle
from paddle.vision.ops import deform_conv2d


def main(in_path, out_path):
    paddle.set_device("cpu")
    data = np.load(in_path)
    stride, padding, dilation = (int(v) for v in data["stride_padding_dilation"])
    tensors = {k: paddle.to_tensor(data[k]) for k in ("x", "offset", "mask", "weight", "bias")}
    out = deform_conv2d(tensors["x"], tensors["offset"], tensors["weight"], bias=tensors["bias"],
                        stride=stride, padding=padding, dilation=dilation, mask=tensors["mask"])
    np.savez(out_path, out=out.numpy())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

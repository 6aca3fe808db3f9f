"""Paddle-side reference for the eval-transform parity test.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_eval_transform.py OUT.npz SIZES IMAGE [IMAGE ...]

SIZES is a comma-separated list of HEIGHTxWIDTH. For every size s and IMAGE i it applies ppdet's
``Decode`` then ``Resize(target_size=[HEIGHT, WIDTH], keep_ratio=False, interp=2)`` (PicoDet's
EvalReader, before NormalizeImage) and saves ``image_{s}_{i}`` (the resized HWC RGB image,
float32 as ppdet leaves it) and ``scale_{s}_{i}`` (float32 ``[scale_y, scale_x]``) to OUT.npz.
"""
import sys

import numpy as np


def main(out_path, sizes, *paths):
    from ppdet.data.transform.operators import Decode, Resize

    decode = Decode()
    arrays = {}
    for s, size in enumerate(sizes.split(",")):
        height, width = (int(v) for v in size.split("x"))
        resize = Resize(target_size=[height, width], keep_ratio=False, interp=2)
        for i, path in enumerate(paths):
            sample = resize(decode({"im_file": path}))
            arrays[f"image_{s}_{i}"] = sample["image"]
            arrays[f"scale_{s}_{i}"] = sample["scale_factor"]
    np.savez(out_path, **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:])

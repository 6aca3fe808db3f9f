"""Paddle-side reference for the SOLOv2 eval-batch padding test.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_pad_batch.py IN.npz OUT.npz

IN.npz holds ``image_{i}`` (resized HWC RGB uint8 images of different sizes) and ``mean``,
``std``; OUT.npz gets ``batch`` (N, 3, H, W) float32: ppdet's EvalReader tail
``NormalizeImage(mean, std, is_scale=True)``, ``Permute``, ``PadBatch(pad_to_stride=32)``.
"""
import sys

import numpy as np


def main(in_path, out_path):
    from ppdet.data.transform.batch_operators import PadBatch
    from ppdet.data.transform.operators import NormalizeImage, Permute

    data = np.load(in_path)
    normalize = NormalizeImage(mean=data["mean"].tolist(), std=data["std"].tolist(),
                               is_scale=True)
    permute = Permute()
    count = len([k for k in data.files if k.startswith("image_")])
    samples = [permute(normalize({"image": data[f"image_{i}"].astype(np.float32)}))
               for i in range(count)]
    samples = PadBatch(pad_to_stride=32)(samples)
    np.savez(out_path, batch=np.stack([s["image"] for s in samples]).astype(np.float32))


if __name__ == "__main__":
    main(*sys.argv[1:])

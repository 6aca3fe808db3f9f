"""Paddle-side reference for the RT-DETR data pipeline test: ppdet's operators, seeded.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_rtdetr_transforms.py IN.npz OUT.npz

``IN.npz`` holds ``image<i>`` (H, W, 3) uint8 RGB, ``boxes<i>`` (n, 4) float32 x1y1x2y2,
``labels<i>``
(n,) int32 and ``seeds`` (S,). For every image ``i`` and seed ``s`` the RT-DETR reader's operators
run in order after ``np.random.seed(s)``: ``RandomExpand(fill_value=ImageNet mean)``,
``RandomCrop()``, ``RandomFlip()`` (their ppdet 2.6.0 code equals develop's; develop's extra
``prob`` of RandomCrop draws from Python's ``random`` and is 1 here), then, after
``np.random.seed(s + 1000)``, the batch operators ``BatchRandomResize(RT-DETR sizes,
random_interp)``, ``NormalizeBox``, ``BboxXYXY2XYWH``. Writes, for case ``<i>_<s>``, the image and
boxes after each sample operator (``expand``, ``crop``, ``flip``: float32 images) and at the end
(``final``: the float32 image rounded and clipped to uint8 to keep the file small, normalised cxcywh
boxes), plus ``<case>/size`` and ``<case>/interp`` of the batch.
(RandomDistort is not run: ppdet 2.6.0's is a different operator from develop's.)
"""
import contextlib
import io
import sys

import numpy as np

with contextlib.redirect_stdout(io.StringIO()):  # ppdet prints warnings on import
    from ppdet.data.transform.batch_operators import BatchRandomResize
    from ppdet.data.transform.operators import (
        BboxXYXY2XYWH,
        NormalizeBox,
        RandomCrop,
        RandomExpand,
        RandomFlip,
    )

SIZES = [480, 512, 544, 576, 608, 640, 640, 640, 672, 704, 736, 768, 800]


def main(src, dst):
    data = np.load(src)
    sample_ops = [("expand", RandomExpand(fill_value=[123.675, 116.28, 103.53])),
                  ("crop", RandomCrop()), ("flip", RandomFlip())]
    resize = BatchRandomResize(SIZES, keep_ratio=False, random_size=True, random_interp=True)
    out = {}
    i = 0
    while f"image{i}" in data:
        for seed in data["seeds"]:
            case = f"{i}_{int(seed)}"
            sample = {"image": data[f"image{i}"].copy(), "gt_bbox": data[f"boxes{i}"].copy(),
                      "gt_class": data[f"labels{i}"].reshape(-1, 1).copy()}
            sample["h"], sample["w"] = sample["image"].shape[:2]
            np.random.seed(int(seed))
            for name, op in sample_ops:
                sample = op(sample)
                out[f"{case}/{name}/image"] = np.array(sample["image"])
                out[f"{case}/{name}/boxes"] = np.array(sample["gt_bbox"])
                out[f"{case}/{name}/labels"] = np.array(sample["gt_class"]).reshape(-1)
            np.random.seed(int(seed) + 1000)
            state = np.random.get_state()
            index = np.random.choice(len(SIZES))
            out[f"{case}/size"] = np.array(SIZES[index])
            out[f"{case}/interp"] = np.array(np.random.choice(resize.interps))
            np.random.set_state(state)
            batch = resize([sample])
            batch = BboxXYXY2XYWH()(NormalizeBox()(batch))
            final = np.clip(np.round(np.asarray(batch[0]["image"], dtype=np.float64)), 0, 255)
            out[f"{case}/final/image"] = final.astype(np.uint8)
            out[f"{case}/final/boxes"] = np.asarray(batch[0]["gt_bbox"])
        i += 1
    np.savez_compressed(dst, **out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

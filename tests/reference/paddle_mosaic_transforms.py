"""Paddle-side reference for the Mosaic/AugmentHSV test: ppdet's dataset and operators, seeded.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_mosaic_transforms.py IN.npz OUT.npz

``IN.npz`` holds ``image<i>`` (H, W, 3) uint8 RGB, ``boxes<i>`` (n, 4) float32 x1y1x2y2,
``labels<i>`` (n,) int32 and the cases ``seed``, ``index``, ``epoch``, ``config`` (equal-length
int arrays). For every case, ppdet 2.6.0's ``DetDataset.__getitem__`` (``mosaic_epoch=180``, the
records already decoded, ``is_crowd`` zeros as COCODataSet gives) picks the records after
``np.random.seed(seed); random.seed(seed)`` and runs the sample operators of ``config``:

- 0, PicoDet-S NPU: ``Mosaic(prob=0.6, input_dim=[640, 640], degrees=[-10, 10], scale=[0.1, 2.0],
  shear=[-2, 2], translate=[-0.1, 0.1], enable_mixup=True)``, ``AugmentHSV(is_bgr=False, hgain=5,
  sgain=30, vgain=30)``, ``RandomFlip(prob=0.5)``;
- 1, the other branches: ``Mosaic(prob=1.0, input_dim=[320, 320], remove_outside_box=True)``,
  ``AugmentHSV()`` (fraction mode, BGR), ``RandomFlip(prob=0.5)``.

Writes for case ``c`` the state after Mosaic (``c/mosaic/*``) and after all three
(``c/final/*``): ``image`` uint8 (ppdet's float32 images are integral, checked), ``boxes`` float32,
``labels`` int32. Also ``hsv2rgb/<path>``: this OpenCV's ``COLOR_HSV2RGB`` of every uint8 HSV
triple (H < 180, (180 * 65536, 3)), once laid out in rows of 1 pixel (its per-pixel code path)
and once in rows of 1024 (its vector path); AugmentHSV converts back to RGB with it.
"""
import contextlib
import copy
import io
import random
import sys

import cv2
import numpy as np

with contextlib.redirect_stdout(io.StringIO()):  # ppdet prints warnings on import
    from ppdet.data.source.dataset import DetDataset
    from ppdet.data.transform.operators import AugmentHSV, Mosaic, RandomFlip

CONFIGS = [
    [Mosaic(prob=0.6, input_dim=[640, 640], degrees=[-10, 10], scale=[0.1, 2.0], shear=[-2, 2],
            translate=[-0.1, 0.1], enable_mixup=True),
     AugmentHSV(is_bgr=False, hgain=5, sgain=30, vgain=30), RandomFlip(prob=0.5)],
    [Mosaic(prob=1.0, input_dim=[320, 320], remove_outside_box=True), AugmentHSV(),
     RandomFlip(prob=0.5)],
]


def _state(sample):
    image = np.asarray(sample["image"])
    assert np.array_equal(image, np.round(image)) and image.min() >= 0 and image.max() <= 255
    return {"image": image.astype(np.uint8), "boxes": np.asarray(sample["gt_bbox"], np.float32),
            "labels": np.asarray(sample["gt_class"]).reshape(-1).astype(np.int32)}


def _records(data):
    records, i = [], 0
    while f"image{i}" in data:
        image, boxes = data[f"image{i}"], data[f"boxes{i}"].reshape(-1, 4).astype(np.float32)
        h, w = image.shape[:2]
        records.append({"image": image, "gt_bbox": boxes, "h": float(h), "w": float(w),
                        "im_shape": np.array([h, w], np.float32), "im_id": np.array([i]),
                        "gt_class": data[f"labels{i}"].reshape(-1, 1).astype(np.int32),
                        "is_crowd": np.zeros((len(boxes), 1), np.int32)})
        i += 1
    return records


def main(src, dst):
    data = np.load(src)
    dataset = DetDataset()
    dataset.roidbs = _records(data)
    dataset.set_kwargs(mosaic_epoch=180)
    out = {}
    for c, (seed, index, epoch, config) in enumerate(zip(data["seed"], data["index"],
                                                         data["epoch"], data["config"])):
        stages = {}

        def transform(sample, ops=CONFIGS[int(config)]):
            sample = ops[0](sample)
            stages["mosaic"] = _state(copy.deepcopy(sample))
            for op in ops[1:]:
                sample = op(sample)
            stages["final"] = _state(sample)
            return sample

        dataset.set_transform(transform)
        dataset.set_epoch(int(epoch))
        np.random.seed(int(seed))
        random.seed(int(seed))
        dataset[int(index)]
        for stage, values in stages.items():
            for key, value in values.items():
                out[f"{c}/{stage}/{key}"] = value
    code = np.arange(180 * 65536, dtype=np.uint32)
    hsv = np.stack([code >> 16, (code >> 8) & 255, code & 255], -1).astype(np.uint8)
    for path, width in (("scalar", 1), ("vector", 1024)):
        rgb = cv2.cvtColor(hsv.reshape(-1, width, 3), cv2.COLOR_HSV2RGB)
        out[f"hsv2rgb/{path}"] = rgb.reshape(-1, 3)
    np.savez(dst, **out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

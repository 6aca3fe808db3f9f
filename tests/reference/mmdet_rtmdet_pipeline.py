"""mmdet 3.3.0's RTMDet training transforms on a sequence of samples, seeded per sample.

Usage: python mmdet_rtmdet_pipeline.py IN.pt OUT.pt (through tests/conftest.py::run_mmdet).
IN.pt: ``pipeline`` (mmdet transform dicts after loading), ``samples`` [dict(img BGR uint8,
gt_bboxes float32 (n, 4), gt_bboxes_labels int64 (n,))] and ``seeds`` (one per sample). Before
sample ``i`` the global RNGs are seeded (``np.random.seed(seeds[i]); random.seed(seeds[i])``, what
mmdet_lite's ``SampleRandom(seeds[i])`` draws); the transforms (and their caches) persist across
samples, as in one data-loader worker. OUT.pt: ``outputs`` [None when a transform dropped the
sample, else dict(img, gt_bboxes, gt_bboxes_labels)]. Never imports mmdet_lite.
"""
import mmdet_stubs  # noqa: F401  (before mmdet)

# isort: split
import random
import sys

import numpy as np
import torch
from mmcv.transforms import Compose
from mmdet.utils import register_all_modules


def main(in_path, out_path):
    register_all_modules()
    data = torch.load(in_path, weights_only=False)
    pipeline = Compose(data["pipeline"])
    outputs = []
    for sample, seed in zip(data["samples"], data["seeds"]):
        np.random.seed(seed)
        random.seed(seed)
        img = sample["img"].copy()
        results = dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2],
                       gt_bboxes=sample["gt_bboxes"].copy(),
                       gt_bboxes_labels=sample["gt_bboxes_labels"].copy(),
                       gt_ignore_flags=np.zeros(len(sample["gt_bboxes"]), dtype=bool))
        out = pipeline(results)
        if out is None:
            outputs.append(None)
            continue
        boxes = out["gt_bboxes"]
        boxes = boxes.numpy() if hasattr(boxes, "numpy") else np.asarray(boxes)
        outputs.append(dict(img=out["img"], gt_bboxes=np.asarray(boxes, np.float32),
                            gt_bboxes_labels=out["gt_bboxes_labels"]))
    torch.save(dict(outputs=outputs), out_path)


if __name__ == "__main__":
    main(*sys.argv[1:3])

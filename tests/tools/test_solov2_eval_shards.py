"""``tools/eval.py -d 2`` for a SOLOv2 exp on CPU equals ``-d 1``: the same ``bbox.json`` and
``segm.json`` and the same twelve bbox and twelve segm lines.

One image per process batch on both sides (``-d 1 -b 1``, ``-d 2 -b 2``): SOLOv2's grids cover the
padded canvas, so an image batched with a larger one is another input (see
``test_solov2_eval_padding``).
"""
import json

import numpy as np
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from mmdet_lite.core.cli_args import eval_parser, parse_args
from mmdet_lite.core.evaluate import run_eval

from conftest import assert_same_coco_detections
from tiny_solov2 import EXP_FILE, detecting_checkpoint, tiny_opts


def _run(tmp, data_dir, ckpt, devices, batch):
    out = tmp / f"d{devices}"
    argv = ["-f", str(EXP_FILE), "-c", str(ckpt), "-d", str(devices), "-b", str(batch),
            "-w", "0", "--device", "cpu",
            *tiny_opts("data_dir", data_dir, "val_ann", "annotations/val.json",
                       "val_image_folder", "val", "output_dir", out)]
    run_eval(parse_args(eval_parser(), argv))
    save_dir = out / EXP_FILE.stem
    log = (save_dir / "eval_log.txt").read_text().splitlines()
    stats = [line.split("|", 2)[-1] for line in log
             if "Average Precision" in line or "Average Recall" in line]
    return [json.loads((save_dir / f"{kind}.json").read_text()) for kind in ("bbox", "segm")], \
        stats


def _assert_same_masks(ours, ref, score_tol=1e-5, min_iou=0.99):
    """Per (image, category) the same number of ``segm.json`` entries, matched one to one
    (Hungarian on score and mask IoU), scores within ``score_tol``, mask IoU >= ``min_iou`` (the
    processes' thread counts differ, so a mask pixel near 0.5 may flip)."""
    def groups(segm):
        out = {}
        for d in segm:
            out.setdefault((d["image_id"], d["category_id"]), []).append(
                (d["score"], mask_utils.decode(d["segmentation"]).astype(bool)))
        return out

    a, b = groups(ours), groups(ref)
    assert {k: len(v) for k, v in a.items()} == {k: len(v) for k, v in b.items()}
    for key, dets in a.items():
        score_diff = np.abs(np.array([s for s, _ in dets])[:, None]
                            - np.array([s for s, _ in b[key]])[None])
        iou = np.array([[(m & n).sum() / max((m | n).sum(), 1) for _, n in b[key]]
                        for _, m in dets])
        rows, cols = linear_sum_assignment(score_diff / score_tol + (1 - iou) / (1 - min_iou))
        assert score_diff[rows, cols].max() <= score_tol, key
        assert iou[rows, cols].min() >= min_iou, key


def test_two_cpu_processes_give_the_same_masks_and_stats(tmp_path, shapes4):
    ckpt = detecting_checkpoint(tmp_path / "tiny_solov2.pth")
    (bbox1, segm1), stats1 = _run(tmp_path, shapes4, ckpt, 1, 1)
    (bbox2, segm2), stats2 = _run(tmp_path, shapes4, ckpt, 2, 2)
    assert len(stats1) == 24 and stats2 == stats1
    assert {d["image_id"] for d in segm1} == {1, 2} and len(segm1) == len(bbox1) > 10
    assert_same_coco_detections(bbox2, bbox1)
    assert all(mask_utils.area(d["segmentation"]) > 0 for d in segm1)
    _assert_same_masks(segm2, segm1)

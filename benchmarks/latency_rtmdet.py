#!/usr/bin/env python3
"""RTMDet CPU latency: ours vs mmdet 3.3.0 on the same weights. Speed is reported, never asserted.

    python benchmarks/latency_rtmdet.py [--configs tiny s] [--threads 1] [--rounds 3]
        [--warmup 2] [--runs 5] [--cls-bias -8]

Per config, mmdet builds the model from its own config file in a reference process
(benchmarks/reference/mmdet_latency_rtmdet.py, mmdet importable as in tests/conftest.py::run_mmdet:
``$MMDET_LITE_MMDET_SITE``, else ``~/.cache/mmdet_lite/mmdet-*``) with random weights (random
BatchNorm statistics, classification biases ``--cls-bias`` so that few anchors pass the score
threshold, as with trained weights) and saves them; ``tools/convert_weights.py`` converts them;
``Predictor`` loads the result. Both sides get the same test-size image (assets/grace_hopper.jpg
resized by our test transform and padded with 114, BGR for mmdet): the largest differences of
the flattened sigmoid scores and decoded boxes are printed before any timing.

Timed at batch 1 with ``--threads`` CPU threads on both sides: ``forward`` (ours:
``model(images)``, normalisation included, eval outputs; mmdet: ``_forward`` of the preprocessed
batch) and ``end to end`` (ours: ``Predictor(bgr)``: resize, forward, NMS, boxes as numpy; mmdet:
``inference_detector``: its test pipeline, preprocessor, forward, NMS). Each round runs mmdet then
us; the table gives the smallest over rounds of each round's median of ``--runs`` calls after
``--warmup``. The 1-minute load average is printed: the machine may be shared.
"""
import argparse
import glob
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mmdet_lite import Predictor  # noqa: E402
from mmdet_lite.data.image_io import read_image  # noqa: E402
from mmdet_lite.exp import get_exp  # noqa: E402

from bench_common import REPO_ROOT, load, run  # noqa: E402

REFERENCE = REPO_ROOT / "benchmarks/reference/mmdet_latency_rtmdet.py"
IMAGE = REPO_ROOT / "assets/grace_hopper.jpg"
CONFIGS = {"tiny": "rtmdet_tiny_8xb32-300e_coco", "s": "rtmdet_s_8xb32-300e_coco",
           "m": "rtmdet_m_8xb32-300e_coco", "l": "rtmdet_l_8xb32-300e_coco",
           "x": "rtmdet_x_8xb32-300e_coco"}


def mmdet_site():
    site = os.environ.get("MMDET_LITE_MMDET_SITE") or next(
        iter(sorted(glob.glob(str(Path.home() / ".cache/mmdet_lite/mmdet-*")))), None)
    if not site or not Path(site, ".ready").is_file():
        raise SystemExit("mmdet's reference packages are missing: run `make mmdet-env` (or set "
                         "MMDET_LITE_MMDET_SITE)")
    return site


def exp_file(name):
    return REPO_ROOT / "exps/rtmdet" / f"{name}.py"


def padded_inputs(exp):
    """The test image resized by our test transform, padded to ``test_size`` with 114:
    (RGB float (1, 3, H, W) for us, BGR uint8 (H, W, 3) for mmdet)."""
    chw, _ = exp.get_test_transform()(read_image(IMAGE))
    h, w = exp.test_size
    rgb = np.full((3, h, w), 114, np.uint8)
    rgb[:, :chw.shape[1], :chw.shape[2]] = chw
    bgr = np.ascontiguousarray(rgb[::-1].transpose(1, 2, 0))
    return torch.from_numpy(rgb)[None].float(), bgr


def mmdet_side(name, folder, bgr, args):
    """Run the reference once: weights in ``folder/mmdet.pth``; its timings (seconds)."""
    np.savez(folder / "in.npz", image=bgr, original=read_image(IMAGE))
    site = mmdet_site()
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join([site, str(REPO_ROOT / "tests/reference")]))
    run([sys.executable, REFERENCE, Path(site) / f"mmdet/.mim/configs/rtmdet/{name}.py",
               folder / "in.npz", folder, "--threads", args.threads, "--warmup", args.warmup,
               "--runs", args.runs, "--cls-bias", args.cls_bias], env=env)
    return json.loads((folder / "mmdet_times.json").read_text())


def median_seconds(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def measure(name, folder, args):
    """``(row of ms, differences)`` for one config."""
    exp = get_exp(exp_file(name))
    images, bgr = padded_inputs(exp)
    mmdet = [mmdet_side(name, folder, bgr, args)]
    ckpt = folder / "ours.pth"
    run([sys.executable, REPO_ROOT / "tools/convert_weights.py", "-f", exp_file(name), "-c",
         folder / "mmdet.pth", "-oc", ckpt, "-nc", exp.num_classes])
    predictor = Predictor(exp_file(name), ckpt, device="cpu", conf=exp.get_score_threshold())
    model, original = predictor.model, read_image(IMAGE)
    reference = np.load(folder / "mmdet.npz")
    with torch.inference_mode():
        scores, boxes = model(images)[:2]
    diffs = {"scores": float(np.abs(scores.numpy() - reference["scores"]).max()),
             "boxes_px": float(np.abs(boxes.numpy() - reference["bboxes"]).max())}
    ours = []
    with torch.inference_mode():
        for r in range(args.rounds):
            if r:
                mmdet.append(mmdet_side(name, folder, bgr, args))
            ours.append({"forward": median_seconds(lambda: model(images), args.warmup, args.runs),
                         "end_to_end": median_seconds(lambda: predictor(original), args.warmup,
                                                      args.runs)})
    best = {side: {k: min(t[k] for t in times) * 1e3 for k in ("forward", "end_to_end")}
            for side, times in (("ours", ours), ("mmdet", mmdet))}
    row = [name, best["ours"]["forward"], best["mmdet"]["forward"],
           best["ours"]["forward"] / best["mmdet"]["forward"], best["ours"]["end_to_end"],
           best["mmdet"]["end_to_end"], best["ours"]["end_to_end"] / best["mmdet"]["end_to_end"]]
    return row, diffs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "s"], choices=sorted(CONFIGS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cls-bias", type=float, default=-8.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.configs:
            folder = Path(tmp) / key
            folder.mkdir()
            row, diffs = measure(CONFIGS[key], folder, args)
            print(f"{CONFIGS[key]}: max |score difference| {diffs['scores']:.2g}, max |box "
                  f"difference| {diffs['boxes_px']:.2g} px (load {load():.1f})", flush=True)
            rows.append(row)
    print(f"\nbatch 1, {args.threads} thread(s), ms (best round's median); load {load():.1f}")
    print(tabulate(rows, headers=["config", "forward ours", "forward mmdet", "ratio",
                                  "end to end ours", "end to end mmdet", "ratio"],
                   floatfmt=".2f"))


if __name__ == "__main__":
    main()

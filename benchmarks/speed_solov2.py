#!/usr/bin/env python3
"""SOLOv2 CPU speed and memory: ours vs ppdet 2.6.0 dygraph on the same weights. Speed is
reported, never asserted.

    python benchmarks/speed_solov2.py [--warmup 1] [--runs 3] [--train-warmup 1] [--train-runs 2]
        [--threads 2] [--eval-images 16]
        [--skip-infer] [--skip-nms] [--skip-train] [--skip-eval]

- end to end, one image file -> masks at batch 1: solov2_r50_fpn_3x_coco at its EvalReader size
  800x1333 (an 800x1216 image, so that nothing is padded) and solov2_r50_enhance_coco at 512x852
  (a 512x832 image). ppdet (benchmarks/reference/paddle_speed_solov2.py) makes the random weights
  of tests/reference/paddle_solov2_e2e.py, tools/convert_weights.py converts them, ``Predictor``
  runs them (``conf`` = the head's 0.1, i.e. Paddle's thresholds);
- Matrix NMS on 500 candidates (random overlapping box-shaped masks at stride 4 of 800x1216):
  ``mask_matrix_nms`` vs ppdet's ``MaskMatrixNMS``;
- one training step (forward, backward, SGD step) of solov2_r50_fpn_1x_coco from random init on
  the same batch of two 512x852 images with their ``Gt2Solov2Target`` targets, each side in its
  own process: median step time and peak RSS (``ru_maxrss``);
- images/s of ``tools/eval.py -d 1`` and ``-d 2`` (``-b 2 -w 0``) with a random-weight
  solov2_shapes on ``--eval-images`` generated shapes images.

Times are medians of ``--runs`` calls after ``--warmup``, ``--threads`` CPU threads on each side.
The 1-minute load average is printed: the machine may be shared.
"""
import argparse
import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import REPO_ROOT, SHARED_DIR, load, paddle_python, run  # noqa: E402

PADDLE_SCRIPT = REPO_ROOT / "benchmarks/reference/paddle_speed_solov2.py"
IMAGE = REPO_ROOT / "assets/grace_hopper.jpg"
INFER_CONFIGS = [("solov2_r50_fpn_3x_coco", (800, 1333), (800, 1216)),
                 ("solov2_r50_enhance_coco", (512, 852), (512, 832))]
TRAIN_CONFIG, TRAIN_SIZE, TRAIN_BATCH = "solov2_r50_fpn_1x_coco", [512, 852], 2


def exp_file(name):
    return REPO_ROOT / "exps/solov2" / f"{name}.py"


def config_file(name):
    return SHARED_DIR / "paddledet_configs/solov2" / f"{name}.yml"


def paddle(mode, *args, opts, warmup=None, runs=None):
    """A ``paddle_speed_solov2.py`` run; its OUT.json (the last positional argument) as a dict."""
    threads = str(opts.threads)
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONPATH="",
               FLAGS_use_mkldnn="0")
    run([paddle_python(), PADDLE_SCRIPT, mode, *args, "--warmup",
         opts.warmup if warmup is None else warmup, "--runs", opts.runs if runs is None else runs,
         "--threads", threads], env=env)
    with open(args[-1]) as f:
        return json.load(f)


def timed(fn, warmup, runs):
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        fn()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def ratio(ours, ref):
    return f"{statistics.median(ours) / statistics.median(ref):.2f}"


def bench_infer(folder, opts):
    from mmdet_lite import Predictor

    rows = []
    for name, test_size, image_size in INFER_CONFIGS:
        image = folder / f"{name}.jpg"
        cv2.imwrite(str(image), cv2.resize(cv2.imread(str(IMAGE)), image_size[::-1]))
        weights, ckpt = folder / f"{name}.pdparams", folder / f"{name}.pth"
        ref = paddle("infer", config_file(name), weights, *test_size, image,
                     folder / f"{name}_paddle.json", opts=opts)
        run([sys.executable, REPO_ROOT / "tools/convert_weights.py", "-f", exp_file(name), "-c",
             weights, "-oc", ckpt, "-nc", 80])
        predictor = Predictor(str(exp_file(name)), str(ckpt), conf=0.1)
        with torch.inference_mode():
            ours = timed(lambda: predictor(str(image)).masks, opts.warmup, opts.runs)
            found = len(predictor(str(image)))
        rows.append([f"{name} {test_size[0]}x{test_size[1]}", f"{statistics.median(ours):.2f}",
                     f"{statistics.median(ref['times']):.2f}", ratio(ours, ref["times"]),
                     f"{found} / {ref['instances']}", f"{load():.1f}"])
    print(tabulate(rows, ["image -> masks (batch 1)", "ours s", "ppdet s", "ours/ppdet",
                          "instances ours/ppdet", "load"], tablefmt="github"), flush=True)


def nms_inputs(num=500, height=200, width=304, seed=0):
    """``num`` overlapping box-shaped masks (float32 0/1), labels of 3 classes, scores, areas."""
    rng = np.random.RandomState(seed)
    masks = np.zeros((num, height, width), np.float32)
    for i in range(num):
        y, x = rng.randint(0, height - 40), rng.randint(0, width - 40)
        h, w = rng.randint(20, 100), rng.randint(20, 140)
        masks[i, y:y + h, x:x + w] = 1
    return dict(seg_masks=masks, cate_labels=rng.randint(0, 3, num).astype(np.int64),
                cate_scores=np.sort(rng.uniform(0.1, 0.9, num)).astype(np.float32)[::-1].copy(),
                sum_masks=masks.sum((1, 2)).astype(np.float32))


def bench_nms(folder, opts):
    from mmdet_lite.models.post_process.matrix_nms import mask_matrix_nms

    data = nms_inputs()
    np.savez(folder / "nms.npz", **data)
    ref = paddle("nms", folder / "nms.npz", folder / "nms_paddle.json", opts=opts)
    args = [torch.from_numpy(data[k]) for k in ("seg_masks", "cate_labels", "cate_scores",
                                                "sum_masks")]
    with torch.inference_mode():
        ours = timed(lambda: mask_matrix_nms(*args), opts.warmup, opts.runs)
    print(tabulate([["Matrix NMS, 500 candidates, 200x304 masks",
                     f"{statistics.median(ours) * 1e3:.1f}",
                     f"{statistics.median(ref['times']) * 1e3:.1f}", ratio(ours, ref["times"]),
                     f"{load():.1f}"]],
                   ["", "ours ms", "ppdet ms", "ours/ppdet", "load"], tablefmt="github"),
          flush=True)


def train_batch(folder):
    """One training batch of solov2_r50_fpn_1x_coco at 512x852 from generated shapes images,
    saved as ``batch.pt`` (ours) and ``batch.npz`` (ppdet's inputs, the image normalised)."""
    from mmdet_lite.data.synthetic import make_shapes_dataset
    from mmdet_lite.exp import get_exp

    data = folder / "train_shapes"
    make_shapes_dataset(data, num_train=4, num_val=0, seed=3)
    exp = get_exp(str(exp_file(TRAIN_CONFIG)))
    exp.merge(["data_dir", str(data), "train_ann", "annotations/train.json",
               "train_image_folder", "train", "num_classes", "5",
               "train_transforms.Resize.target_size", json.dumps(TRAIN_SIZE)])
    loader = exp.get_train_loader(TRAIN_BATCH, 0, seed=0)
    loader.set_epoch(0)
    batch = next(iter(loader))
    torch.save(batch, folder / "batch.pt")
    mean = np.array(exp.pixel_mean, np.float32).reshape(1, 3, 1, 1)
    std = np.array(exp.pixel_std, np.float32).reshape(1, 3, 1, 1)
    arrays = {k: v.numpy() for k, v in batch.items()
              if re.match(r"(ins_label|cate_label|grid_order)\d|fg_num$", k)}
    arrays["image"] = ((batch["images"].numpy() / 255.0 - mean) / std).astype(np.float32)
    np.savez(folder / "batch.npz", **arrays)
    return tuple(batch["images"].shape)


def train_ours(batch_path, out, warmup, runs, threads):
    """Our training step in this process (``--train-ours``): writes times and ``ru_maxrss``."""
    from mmdet_lite.data.train_loader import batch_to_device
    from mmdet_lite.exp import get_exp

    torch.set_num_threads(threads)
    exp = get_exp(str(exp_file(TRAIN_CONFIG)))
    model = exp.get_model().train()
    optimizer = exp.get_optimizer(model)
    images, targets = batch_to_device(torch.load(batch_path, weights_only=False), "cpu")

    def step():
        loss = model(images, targets)["total_loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = timed(step, warmup, runs)
    with open(out, "w") as f:
        json.dump(dict(times=times, maxrss_before=before,
                       maxrss_after=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), f)


def bench_train(folder, opts):
    shape = train_batch(folder)
    ref = paddle("train", config_file(TRAIN_CONFIG), folder / "batch.npz",
                 folder / "train_paddle.json", opts=opts, warmup=opts.train_warmup,
                 runs=opts.train_runs)
    run([sys.executable, Path(__file__).resolve(), "--train-ours", folder / "batch.pt",
         folder / "train_ours.json", "--warmup", opts.train_warmup, "--runs", opts.train_runs,
         "--threads",
         opts.threads], env=dict(os.environ, OMP_NUM_THREADS=str(opts.threads)))
    with open(folder / "train_ours.json") as f:
        ours = json.load(f)
    rows = [["step s", f"{statistics.median(ours['times']):.2f}",
             f"{statistics.median(ref['times']):.2f}", ratio(ours["times"], ref["times"])],
            ["peak RSS MiB", f"{ours['maxrss_after'] / 1024:.0f}",
             f"{ref['maxrss_after'] / 1024:.0f}",
             f"{ours['maxrss_after'] / ref['maxrss_after']:.2f}"],
            ["RSS growth in the steps MiB",
             f"{(ours['maxrss_after'] - ours['maxrss_before']) / 1024:.0f}",
             f"{(ref['maxrss_after'] - ref['maxrss_before']) / 1024:.0f}", ""]]
    print(f"training step of {TRAIN_CONFIG}, random init, batch {shape[0]} at {shape[2]}x"
          f"{shape[3]}, median of {opts.train_runs} after {opts.train_warmup} (load {load():.1f})")
    print(tabulate(rows, ["", "ours", "ppdet", "ours/ppdet"], tablefmt="github"), flush=True)


def bench_eval(folder, opts):
    from mmdet_lite.data.synthetic import make_shapes_dataset
    from mmdet_lite.exp import get_exp

    data, ckpt = folder / "eval_shapes", folder / "solov2_shapes_random.pth"
    make_shapes_dataset(data, num_train=0, num_val=opts.eval_images, seed=0)
    torch.manual_seed(0)
    torch.save({"model": get_exp(str(exp_file("solov2_shapes"))).get_model().state_dict()}, ckpt)
    rows = []
    for devices in (1, 2):
        start = time.perf_counter()
        out = run([sys.executable, REPO_ROOT / "tools/eval.py", "-f", exp_file("solov2_shapes"),
                   "-c", ckpt, "-d", devices, "-b", 2, "-w", 0, "--device", "cpu",
                   "data_dir", data, "val_ann", "annotations/val.json", "val_image_folder",
                   "val", "output_dir", folder / f"eval_d{devices}"])
        wall = time.perf_counter() - start
        took = float(re.search(r"Evaluation of \d+ process\(es\) took ([\d.]+) s", out).group(1))
        rows.append([f"-d {devices}", f"{opts.eval_images / took:.1f}",
                     f"{opts.eval_images / wall:.1f}", f"{load():.1f}"])
    print(f"tools/eval.py, solov2_shapes (random weights), {opts.eval_images} generated images, "
          "-b 2 -w 0")
    print(tabulate(rows, ["", "images/s (evaluation)", "images/s (whole command)", "load"],
                   tablefmt="github"), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-warmup", type=int, default=1)
    parser.add_argument("--train-runs", type=int, default=2)
    parser.add_argument("--eval-images", type=int, default=16)
    for part in ("infer", "nms", "train", "eval"):
        parser.add_argument(f"--skip-{part}", action="store_true")
    parser.add_argument("--train-ours", nargs=2, metavar=("BATCH", "OUT"), help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.train_ours:
        return train_ours(*opts.train_ours, opts.warmup, opts.runs, opts.threads)
    torch.set_num_threads(opts.threads)
    print(f"torch {torch.__version__}, {opts.threads} threads, {os.cpu_count()} CPUs, "
          f"load {load():.1f}", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for part, bench in (("infer", bench_infer), ("nms", bench_nms),
                            ("train", bench_train), ("eval", bench_eval)):
            if not getattr(opts, f"skip_{part}"):
                bench(folder, opts)
    print(f"total {time.perf_counter() - start:.0f} s")
    return None


if __name__ == "__main__":
    main()

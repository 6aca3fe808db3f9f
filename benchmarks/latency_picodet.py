#!/usr/bin/env python3
"""PicoDet CPU latency: our Predictor vs ppdet on the same weights, onnxruntime, compute floor,
and tools/eval.py throughput. Speed is reported, never asserted.

    python benchmarks/latency_picodet.py [--configs NAME ...] (default: S-416 and L-640)
        [--rounds 3] [--warmup 5] [--runs 30] [--threads 2] [--cls-bias -10] [--skip-onnx]
        [--skip-eval] [--eval-images 48] [--eval-workers 0 2] [--no-mkldnn-column] [--profile]

Latency is end to end for one image file at batch 1 (decode, resize, normalise, forward, NMS,
boxes as numpy), ``--threads`` CPU threads on both sides: ``torch.set_num_threads`` for us,
OMP_NUM_THREADS / MKL_NUM_THREADS and Paddle's math-library setting for the Paddle subprocess
(benchmarks/reference/paddle_latency_picodet.py, ppdet dygraph with its default flags; a second
Paddle column turns oneDNN on with FLAGS_use_mkldnn=1). The weights are random (BN statistics
calibrated on the image) with classification biases of ``--cls-bias`` so that, as with trained
weights, only ~1k of the anchor/class pairs pass the NMS score threshold; ppdet makes them,
tools/convert_weights.py converts them. Each round runs Paddle then us then onnxruntime; the table
gives the median over rounds of each round's median of ``--runs`` timed calls after ``--warmup``.
Also printed: the model GFLOPs (torch.utils.flop_counter) divided by this machine's torch.mm
GFLOP/s at the same thread count (a floor no implementation can beat), and the images/s of
``tools/eval.py -d 1`` and ``-d 2`` on a generated shapes set with a random-weight model. The
1-minute load average is printed with each measurement: the machine may be shared.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
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

from bench_common import REPO_ROOT, SHARED_DIR, load, paddle_python, run  # noqa: E402
from bench_common import picodet_exp_file as exp_file

PADDLE_SCRIPT = REPO_ROOT / "benchmarks/reference/paddle_latency_picodet.py"
IMAGE = REPO_ROOT / "assets/grace_hopper.jpg"


def paddle_latency(name, weights, out, args, mkldnn=False):
    """Per-run seconds of ppdet's inference in a Paddle subprocess (writes ``weights`` once)."""
    threads = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONPATH="",
               FLAGS_use_mkldnn="1" if mkldnn else "0")
    run([paddle_python(), PADDLE_SCRIPT, SHARED_DIR / f"paddledet_configs/picodet/{name}.yml",
         weights, IMAGE, out, "--warmup", args.warmup, "--runs", args.runs, "--threads", threads,
         "--cls-bias", args.cls_bias], env=env)
    with open(out) as f:
        return json.load(f)


def timed(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


class OnnxRunner:
    """onnxruntime on the graph of tools/export_onnx.py (NMS inside): file -> boxes."""

    def __init__(self, name, ckpt, folder, threads):
        import onnxruntime as ort

        path = Path(folder) / f"{name}.onnx"
        run([sys.executable, REPO_ROOT / "tools/export_onnx.py", "-f", exp_file(name), "-c", ckpt,
             "--output-name", path])
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.transform = get_exp(exp_file(name)).get_test_transform()

    def __call__(self, path):
        chw, scale = self.transform(read_image(path))
        boxes, scores, labels, _ = self.session.run(None, {"images": chw[None].astype(np.float32)})
        return boxes / np.concatenate([scale[::-1], scale[::-1]]), scores, labels


def breakdown(predictor, warmup, runs):
    """Median ms of each stage of our call: decode, resize, forward, NMS (boxes to numpy)."""
    bgr = read_image(IMAGE)
    chw, scale = predictor.transform(bgr)
    x = torch.from_numpy(chw)[None].float()
    sizes = (torch.from_numpy(scale)[None], torch.tensor([chw.shape[-2:]]),
             torch.tensor([bgr.shape[:2]]))
    with torch.inference_mode():
        outputs = predictor.model(x)
        stages = dict(decode=lambda: read_image(IMAGE), resize=lambda: predictor.transform(bgr),
                      forward=lambda: predictor.model(x),
                      nms=lambda: predictor.model.postprocess(outputs, *sizes)[0].boxes.numpy())
        return {k: statistics.median(timed(fn, warmup, runs)) * 1e3 for k, fn in stages.items()}


def model_gflops(model, size):
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, *size))
    return counter.get_total_flops() / 1e9


def matmul_gflops(threads, n=2048, repeats=10):
    a, b = torch.randn(n, n), torch.randn(n, n)
    times = timed(lambda: torch.mm(a, b), 3, repeats)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def eval_throughput(folder, num_val, workers):
    """Images/s of tools/eval.py -d 1 and -d 2 with each ``-w`` in ``workers`` on a generated
    shapes val set, random-weight PicoDet-S: {(devices, workers): (eval, whole command, status)}."""
    from mmdet_lite.data.synthetic import make_shapes_dataset

    data = Path(folder) / "shapes"
    ckpt = Path(folder) / "random_s416_5cls.pth"
    if not data.exists():
        make_shapes_dataset(data, num_train=0, num_val=num_val, seed=0)
        exp = get_exp(exp_file("picodet_s_416_coco_lcnet"))
        exp.num_classes = 5
        torch.manual_seed(0)
        torch.save({"model": exp.get_model().state_dict()}, ckpt)
    results = {}
    for d, w in [(d, w) for w in workers for d in (1, 2)]:
        start = time.perf_counter()
        cmd = [sys.executable, REPO_ROOT / "tools/eval.py", "-f",
               exp_file("picodet_s_416_coco_lcnet"), "-c", ckpt, "-d", d, "-b", 8, "-w", w,
               "data_dir", data, "val_ann", "annotations/val.json", "val_image_folder", "val",
               "num_classes", 5, "output_dir", Path(folder) / "out"]
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                              cwd=REPO_ROOT, timeout=1800)
        wall = time.perf_counter() - start
        took = re.search(r"Evaluation of \d+ process\(es\) took ([\d.]+) s",
                         proc.stdout + proc.stderr)
        if proc.returncode != 0:  # reported, not fatal: the timing line may still be there
            print(f"tools/eval.py -d {d} -w {w} exited with status {proc.returncode}:\n"
                  f"{proc.stderr[-1500:]}", flush=True)
        results[d, w] = (num_val / float(took.group(1)) if took else float("nan"), num_val / wall,
                      proc.returncode)
    return results


def profile(predictor, path):
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for _ in range(3):
        predictor(path)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            predictor(path)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+",
                        default=["picodet_s_416_coco_lcnet", "picodet_l_640_coco_lcnet"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cls-bias", type=float, default=-10.0)
    parser.add_argument("--eval-images", type=int, default=48)
    parser.add_argument("--eval-workers", type=int, nargs="+", default=[0, 2],
                        help="-w values of tools/eval.py to try")
    parser.add_argument("--skip-onnx", action="store_true")
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--no-mkldnn-column", action="store_true")
    parser.add_argument("--profile", action="store_true", help="torch.profiler table of our call")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.threads} threads, load "
          f"{load():.2f}", flush=True)

    folder = tempfile.mkdtemp(prefix="picodet_latency_")
    try:
        run_benchmarks(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure(args, folder):
    """Rounds of Paddle, ours and onnxruntime per config -> (samples, predictors)."""
    state = {}
    samples = {n: {"paddle": [], "paddle_best": [], "paddle_mkldnn": [], "ours": [],
                   "ours_best": [], "onnx": [], "load": [], "stages": []} for n in args.configs}
    for r in range(args.rounds):
        for name in args.configs:
            s = samples[name]
            weights = Path(folder) / f"{name}.pdparams"
            s["load"].append(load())
            ref = paddle_latency(name, weights, Path(folder) / f"{name}_{r}.json", args)
            s["paddle"].append(statistics.median(ref["times"]))
            s["paddle_best"].append(min(ref["times"]))
            if not args.no_mkldnn_column:
                mk = paddle_latency(name, weights, Path(folder) / f"{name}_{r}_mk.json", args, True)
                s["paddle_mkldnn"].append(statistics.median(mk["times"]))
            if name not in state:
                pth = Path(folder) / f"{name}.pth"
                run([sys.executable, REPO_ROOT / "tools/convert_weights.py", "-f", exp_file(name),
                     "-c", weights, "-oc", pth, "-nc", 80])
                conf = get_exp(exp_file(name)).get_score_threshold()
                predictor = Predictor(exp_file(name), pth, device="cpu", conf=conf)
                onnx = None if args.skip_onnx else OnnxRunner(name, pth, folder, args.threads)
                state[name] = (predictor, onnx, ref["detections"])
            predictor, onnx, num_ref = state[name]
            num_ours = len(predictor(IMAGE))
            assert num_ours == num_ref, f"{name}: {num_ours} detections vs Paddle's {num_ref}"
            times = timed(lambda: predictor(IMAGE), args.warmup, args.runs)
            s["ours"].append(statistics.median(times))
            s["ours_best"].append(min(times))
            s["stages"].append(breakdown(predictor, args.warmup, args.runs))
            if onnx is not None:
                s["onnx"].append(statistics.median(timed(lambda: onnx(IMAGE), args.warmup,
                                                         args.runs)))
            print(f"round {r} {name}: load {s['load'][-1]:.2f} paddle {s['paddle'][-1] * 1e3:.1f} "
                  f"ms, ours {s['ours'][-1] * 1e3:.1f} ms, {num_ours} detections", flush=True)
    return samples, {name: value[0] for name, value in state.items()}


def ms(values):
    return f"{statistics.median(values) * 1e3:.1f}" if values else "-"


def report_latency(args, samples, predictors):
    rows = []
    for name in args.configs:
        s, predictor = samples[name], predictors[name]
        ours, paddle = statistics.median(s["ours"]), statistics.median(s["paddle"])
        best = min(s["ours_best"]) / min(s["paddle_best"])
        mkl = (f"{ours / statistics.median(s['paddle_mkldnn']):.2f}" if s["paddle_mkldnn"]
               else "-")
        gflops = model_gflops(predictor.model, tuple(predictor.exp.test_size))
        rows.append([name, ms(s["ours"]), ms(s["paddle"]), f"{ours / paddle:.2f} ({best:.2f})",
                     ms(s["paddle_mkldnn"]), mkl, ms(s["onnx"]), f"{gflops:.2f}",
                     f"{min(s['load']):.1f}-{max(s['load']):.1f}"])
    print(f"\nlatency, image file -> boxes, batch 1, {args.threads} threads, {IMAGE.name}, median "
          f"of {args.rounds} rounds x {args.runs} runs (ms)")
    print("ours/paddle: ratio of the medians (of the fastest runs in brackets)")
    print(tabulate(rows, headers=["config", "ours", "paddle", "ours/paddle", "paddle oneDNN",
                                  "ours/oneDNN", "onnxruntime", "GFLOPs", "load"],
                   tablefmt="github"))

    stages = ["decode", "resize", "forward", "nms"]
    print("\nour call by stage (ms, median over rounds)")
    print(tabulate([[name] + [f"{statistics.median(r[k] for r in samples[name]['stages']):.1f}"
                              for k in stages] for name in args.configs],
                   headers=["config"] + stages, tablefmt="github"))

    peak = matmul_gflops(args.threads)
    print(f"\ncompute floor: torch.mm 2048^2 at {args.threads} threads = {peak:.1f} GFLOP/s "
          f"(load {load():.2f})")
    for row in rows:
        print(f"  {row[0]}: {row[7]} GFLOPs / {peak:.1f} GFLOP/s = "
              f"{float(row[7]) / peak * 1e3:.1f} ms (ours {row[1]} ms)")


def run_benchmarks(args, folder):
    samples, predictors = measure(args, folder)
    report_latency(args, samples, predictors)
    if args.profile:
        for name in args.configs:
            print(f"\ntorch.profiler, {name}, 5 calls")
            profile(predictors[name], IMAGE)
    if not args.skip_eval:
        results = eval_throughput(folder, args.eval_images, args.eval_workers)
        print(f"\ntools/eval.py on {args.eval_images} generated shapes images, PicoDet-S-416 "
              f"random weights, 5 classes, -b 8 (load {load():.2f})")
        print(tabulate([[f"-d {d} -w {w}", f"{a:.1f}", f"{b:.1f}", rc]
                        for (d, w), (a, b, rc) in results.items()],
                       headers=["command", "images/s (evaluation)", "images/s (whole command)",
                                "exit status"], tablefmt="github"))


if __name__ == "__main__":
    main()

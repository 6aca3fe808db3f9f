#!/usr/bin/env python3
"""PicoDet training speed on the CPU: our step vs ppdet's, data-loader throughput, peak memory.
Reported, never asserted.

    python benchmarks/train_speed_picodet.py [--config picodet_s_416_coco_lcnet] [--batch 8]
        [--size 416] [--threads 2] [--warmup 2] [--iters 5] [--rounds 3] [--workers 2]
        [--skip-paddle]

Step time: one training iteration on a fixed batch (``--batch`` images of a generated shapes set
through our PicoDet TrainReader at ``--size``), forward + backward + optimizer step, with the
exp's model (80 classes, random init), optimizer and LR schedule, as our ``Trainer`` runs it on the
CPU (channels-last) and as ppdet's ``Trainer`` runs it
(benchmarks/train_speed_picodet_paddle.py, same batch, same config, dygraph, default flags).
Median over ``--iters`` steps after ``--warmup``, for the static ATSS assigner (epoch 0) and the
task-aligned one (epoch >= static_assigner_epoch). Each side runs in a fresh process with
``--threads`` threads (torch.set_num_threads / Paddle's math-library setting, OMP_NUM_THREADS and
MKL_NUM_THREADS in both environments); ``--rounds`` rounds alternate Paddle and ours, and the
table gives the median of the rounds' medians with their range. On a machine shared with other
jobs, multi-threaded torch suffers most (a preempted OpenMP thread stalls every parallel region):
compare the ``--threads 1`` numbers there, and watch the load column.

Data loader: images/s of ``exp.get_train_loader`` with ``--workers`` workers (RandomCrop,
RandomFlip, RandomDistort, BatchRandomResize over the exp's train sizes) on the same generated set,
without training, compared with the training images/s (batch / step time) of the same process
count.

Peak memory: the growth of ``ru_maxrss`` (the process's resident-set high-water mark) from before
the first step to after the last, divided by the batch: activations, gradients, optimizer state and
allocator caches that training adds on top of the built model, per image. (tracemalloc would miss
the tensors' memory; on a GPU ``torch.cuda.max_memory_allocated`` is the measure, not done here.)
The 1-minute load average is printed with each measurement: the machine may be shared.
"""
import argparse
import json
import os
import resource
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

from mmdet_lite.data.coco import COCODataset  # noqa: E402
from mmdet_lite.data.synthetic import make_shapes_dataset  # noqa: E402
from mmdet_lite.data.train_loader import build_train_loader  # noqa: E402
from mmdet_lite.exp import get_exp  # noqa: E402

from bench_common import REPO_ROOT, SHARED_DIR, load, paddle_python  # noqa: E402
from bench_common import picodet_exp_file as exp_file

PADDLE_SCRIPT = REPO_ROOT / "benchmarks/train_speed_picodet_paddle.py"


def write_batch(exp, data_dir, batch_size, size, path):
    """One training batch of the shapes set through our TrainReader at ``size``, as .npz."""
    dataset = COCODataset(data_dir, "annotations/train.json", "train")
    loader = build_train_loader(dataset, batch_size, 0, seed=0, target_sizes=[size],
                                sample_transforms=exp.sample_transforms())
    loader.set_epoch(0)
    batch = next(iter(loader))
    images = batch["images"].numpy()
    mean = np.asarray(exp.pixel_mean, np.float32)[None, :, None, None]
    std = np.asarray(exp.pixel_std, np.float32)[None, :, None, None]
    np.savez(path, images=images, image_norm=((images / np.float32(255.0) - mean) / std),
             gt_bboxes=batch["gt_bboxes"].numpy(), gt_labels=batch["gt_labels"].numpy(),
             pad_gt_mask=batch["pad_gt_mask"].numpy())


def maxrss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_ours(args):
    """Worker process: our training step on the saved batch; writes the JSON the Paddle side
    does."""
    torch.set_num_threads(args.threads)
    exp = get_exp(str(exp_file(args.config)))
    model = exp.get_model().train().to(memory_format=torch.channels_last)  # as Trainer on the CPU
    optimizer = exp.get_optimizer(model)
    batch = np.load(args.worker_batch)
    scheduler = exp.get_lr_scheduler(100, len(batch["images"]))
    images = torch.from_numpy(batch["images"])
    targets = {k: torch.from_numpy(batch[k]) for k in ("gt_bboxes", "gt_labels", "pad_gt_mask")}
    targets["epoch_id"] = args.epoch_id

    def step(t):
        scheduler.step(optimizer, t)
        x = images.float().contiguous(memory_format=torch.channels_last)
        loss = model(x, targets)["total_loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss)

    before = maxrss_kib()
    times, losses = [], []
    for i in range(args.warmup + args.iters):
        start = time.perf_counter()
        losses.append(step(i))
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    Path(args.worker_out).write_text(json.dumps(dict(times=times, losses=losses,
                                                     maxrss_before=before,
                                                     maxrss_after=maxrss_kib())))


def thread_env(threads, **extra):
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **extra)


def measure_step(args, side, batch_path, epoch_id, folder):
    out = folder / f"{side}_{epoch_id}.json"
    common = ["--warmup", str(args.warmup), "--iters", str(args.iters),
              "--threads", str(args.threads)]
    if side == "ours":
        cmd = [sys.executable, __file__, "--config", args.config, "--worker-batch", str(batch_path),
               "--worker-out", str(out), "--epoch-id", str(epoch_id), *common]
        env = thread_env(args.threads, PYTHONPATH=str(REPO_ROOT))
    else:
        config = SHARED_DIR / "paddledet_configs/picodet" / f"{args.config}.yml"
        cmd = [paddle_python(), str(PADDLE_SCRIPT), str(config), str(batch_path), str(out),
               "--epoch-id", str(epoch_id), *common]
        env = thread_env(args.threads, PYTHONPATH="")
    start_load = load()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{side} step benchmark failed:\n{proc.stderr[-4000:]}")
    result = json.loads(out.read_text())
    result["load"] = (start_load, load())
    return result


def loader_throughput(exp, data_dir, batch_size, workers, num_batches):
    """Images/s of the exp's train loader (first batch excluded: worker start-up)."""
    exp.merge(["data_dir", str(data_dir), "train_ann", "annotations/train.json",
               "train_image_folder", "train", "num_classes", "5"])
    loader = exp.get_train_loader(batch_size, workers, seed=0)
    seen, start, epoch = -1, None, 0
    while seen < num_batches:
        loader.set_epoch(epoch)
        for batch in loader:
            seen += 1
            if seen == 0:
                start = time.perf_counter()
            elif seen == num_batches:
                break
        epoch += 1
    return num_batches * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="picodet_s_416_coco_lcnet")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--loader-batches", type=int, default=30)
    parser.add_argument("--skip-paddle", action="store_true")
    parser.add_argument("--epoch-id", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker-batch", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_batch:
        return run_ours(args)

    torch.set_num_threads(args.threads)
    exp = get_exp(str(exp_file(args.config)))
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.threads} threads, "
          f"{args.config}, batch {args.batch} at {args.size}, load {load():.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_shapes_dataset(folder / "shapes", num_train=64, num_val=0, seed=0)
        batch_path = folder / "batch.npz"
        write_batch(exp, folder / "shapes", args.batch, args.size, batch_path)
        rows, step_times = [], {}
        phases = ((0, "ATSS (epoch 0)"),
                  (exp.head["static_assigner_epoch"], "task-aligned"))
        sides = ("ours",) if args.skip_paddle else ("paddle", "ours")
        for epoch_id, phase in phases:
            runs = {side: [] for side in sides}
            for _ in range(args.rounds):  # interleaved, so that both sides see the same load
                for side in sides:
                    runs[side].append(measure_step(args, side, batch_path, epoch_id, folder))
            for side, results in runs.items():
                medians = [statistics.median(res["times"]) for res in results]
                median = statistics.median(medians)
                step_times[side, epoch_id] = median
                grow = max(res["maxrss_after"] - res["maxrss_before"] for res in results) / 1024
                loads = [x for res in results for x in res["load"]]
                rows.append([phase, side, f"{median:.3f}", f"{min(medians):.3f}-{max(medians):.3f}",
                             f"{args.batch / median:.1f}", f"{grow / args.batch:.0f}",
                             f"{max(res['maxrss_after'] for res in results) / 1024:.0f}",
                             f"{results[0]['losses'][0]:.3f}",
                             f"{min(loads):.2f}-{max(loads):.2f}"])
            if not args.skip_paddle:
                ratio = step_times["ours", epoch_id] / step_times["paddle", epoch_id]
                rows.append([phase, "ours / paddle", f"{ratio:.2f}", "", "", "", "", "", ""])
        print(tabulate(rows, headers=["assigner", "side", "step s", "round medians",
                                      "train img/s", "peak MiB/img", "maxrss MiB", "first loss",
                                      "load"]))
        load_before = load()
        ips = loader_throughput(exp, folder / "shapes", args.batch, args.workers,
                                args.loader_batches)
        train_ips = args.batch / step_times["ours", 0]
        print(f"\ndata loader: {ips:.1f} images/s with {args.workers} workers, batch {args.batch}, "
              f"train sizes {exp.train_sizes} (load {load_before:.2f}/{load():.2f}); training "
              f"consumes {train_ips:.1f} images/s: the loader is {ips / train_ips:.1f}x faster")


if __name__ == "__main__":
    main()

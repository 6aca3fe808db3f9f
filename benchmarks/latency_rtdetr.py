#!/usr/bin/env python3
"""RT-DETR CPU speed: our detector vs HF transformers' RTDetrForObjectDetection, same weights.
Speed is reported, never asserted.

    python benchmarks/latency_rtdetr.py [--configs r18vd r50vd] [--size 640] [--threads 2]
        [--rounds 3] [--warmup 2] [--runs 5] [--train-config r18vd] [--train-batch 2]
        [--train-size 640] [--train-steps 3] [--skip-train] [--channels-last] [--fuse]
        [--profile]

Forward latency: batch 1 at ``--size``, ``torch.set_num_threads(--threads)``, eval mode, the raw
network outputs on both sides (ours: ``model(images)`` -> logits and boxes of the last decoder
layer; HF: ``model(pixel_values)`` -> its output object; no post-processing). Both models hold
the same random weights (benchmarks/rtdetr_hf.py maps them as tests/models/test_rtdetr_parity.py
does), so they compute the same thing (the largest difference of the sorted logits is printed).

Training step: ``--train-batch`` images at ``--train-size`` with the same random boxes, train mode
with denoising (the torch seed is reset before every step so both draw the same groups), the loss,
backward, global gradient-norm clipping at 0.1 and one ``torch.optim.AdamW`` step (lr 1e-4, weight
decay 1e-4) on each side; the first step's total losses are printed side by side.

Each round times us then HF (HF first every other round); the table gives, per model, the
smallest over the rounds of the round's median of ``--runs`` calls after ``--warmup``, in wall
time and in this process's CPU time. On a shared machine use ``--threads 1`` for comparisons: the
CPU time of one thread hardly depends on other jobs, while several threads wait at every
operator for a sibling that another job has descheduled (wall times then vary several-fold).
``--channels-last`` adds our model in channels-last memory format (what tools/train.py uses on the
CPU); ``--fuse`` adds it with BatchNorm folded into the convolutions and RepVGG branches merged
(``Predictor(fuse=True)``, ``--fuse`` of tools/eval.py and tools/demo.py). ``--profile`` prints
torch.profiler's top operators of each side. The 1-minute load average
is printed.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mmdet_lite.models.fuse import fuse_model  # noqa: E402

from bench_common import load  # noqa: E402
from rtdetr_hf import build_ours, build_pair  # noqa: E402


def median_time(fn, warmup, runs):
    """Median (wall seconds, process CPU seconds) of ``runs`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(runs):
        tic, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - tic)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def compare(fns, rounds, warmup, runs):
    """``{name: (wall, cpu)}``: the best round's medians (other jobs on the machine only ever
    slow a round down); the names are timed in turn, in reversed order every other round."""
    results = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            results[name].append(median_time(fns[name], warmup, runs))
    return {name: tuple(min(v) for v in zip(*results[name])) for name in names}


def profile(name, fn, rows=15):
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    fn()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    print(f"\n--- torch.profiler: {name}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def forward_fns(args, name):
    _, ours, hf = build_pair(name, args.size)
    ours.eval(), hf.eval()
    images = torch.randint(0, 256, (1, 3, args.size, args.size),
                           generator=torch.Generator().manual_seed(0)).float()
    with torch.no_grad():  # sorted: near-equal queries may come in another order
        ours_logits = ours(images)[0].flatten().sort().values
        hf_logits = hf(pixel_values=images / 255.0).logits.flatten().sort().values
    diff = (ours_logits - hf_logits).abs().max().item()
    fns = {"ours": lambda: ours(images), "HF": lambda: hf(pixel_values=images / 255.0)}
    if args.channels_last:
        ours_cl = build_ours(name, args.size)[1].eval().to(memory_format=torch.channels_last)
        images_cl = images.contiguous(memory_format=torch.channels_last)
        fns["ours channels-last"] = lambda: ours_cl(images_cl)
    if args.fuse:
        fused = fuse_model(build_ours(name, args.size)[1].eval())
        images_cl = images.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            fused_logits = fused(images)[0].flatten().sort().values
        print(f"{name}: max |sorted logit difference| fused vs unfused "
              f"{(fused_logits - ours_logits).abs().max().item():.2g}", flush=True)
        fns["ours fused"] = lambda: fused(images)
        if args.channels_last:
            fused_cl = fuse_model(build_ours(name, args.size)[1].eval()).to(
                memory_format=torch.channels_last)
            fns["ours fused channels-last"] = lambda: fused_cl(images_cl)
    return fns, diff


def random_targets(batch, seed=0):
    """Per image 3..8 boxes (normalised cxcywh) and labels: our padded dict and HF's list."""
    gen = torch.Generator().manual_seed(seed)
    labels, boxes = [], []
    for _ in range(batch):
        n = int(torch.randint(3, 9, (1,), generator=gen))
        cxcy = torch.rand(n, 2, generator=gen) * 0.6 + 0.2
        wh = torch.rand(n, 2, generator=gen) * 0.3 + 0.05
        boxes.append(torch.cat([cxcy, wh], 1))
        labels.append(torch.randint(0, 80, (n,), generator=gen))
    most = max(len(b) for b in boxes)
    padded = dict(gt_bboxes=torch.zeros(batch, most, 4), gt_labels=torch.zeros(batch, most, 1,
                  dtype=torch.int64), pad_gt_mask=torch.zeros(batch, most, 1))
    for i, (lab, box) in enumerate(zip(labels, boxes)):
        padded["gt_bboxes"][i, :len(box)] = box
        padded["gt_labels"][i, :len(lab), 0] = lab
        padded["pad_gt_mask"][i, :len(lab)] = 1.0
    return padded, [dict(class_labels=lab, boxes=box) for lab, box in zip(labels, boxes)]


def train_step_fn(model, loss_fn):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4)
    losses = []

    def step():
        torch.manual_seed(123)  # the same denoising groups on both sides, every step
        loss = loss_fn()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.1)
        optimizer.step()
        losses.append(loss.item())
    return step, losses


def train_fns(args):
    _, ours, hf = build_pair(args.train_config, args.train_size)
    ours.train(), hf.train()
    images = torch.randint(0, 256, (args.train_batch, 3, args.train_size, args.train_size),
                           generator=torch.Generator().manual_seed(1)).float()
    ours_targets, hf_labels = random_targets(args.train_batch)
    ours_step, ours_losses = train_step_fn(ours, lambda: ours(images, ours_targets)["total_loss"])
    hf_step, hf_losses = train_step_fn(
        hf, lambda: hf(pixel_values=images / 255.0, labels=hf_labels).loss)
    ours_step(), hf_step()  # the first step from identical weights: the losses should agree
    first = (ours_losses[0], hf_losses[0])
    fns = {"ours": ours_step, "HF": hf_step}
    if args.channels_last:
        ours_cl = build_ours(args.train_config, args.train_size)[1].train().to(
            memory_format=torch.channels_last)
        images_cl = images.contiguous(memory_format=torch.channels_last)
        fns["ours channels-last"] = train_step_fn(
            ours_cl, lambda: ours_cl(images_cl, ours_targets)["total_loss"])[0]
    return fns, first


def rows_for(what, times):
    hf_wall, hf_cpu = times["HF"]
    return [[what, name, f"{wall * 1000:.0f}", f"{cpu * 1000:.0f}",
             f"{wall / hf_wall:.2f}" if name != "HF" else "",
             f"{cpu / hf_cpu:.2f}" if name != "HF" else ""]
            for name, (wall, cpu) in times.items()]


def summary(times):
    return ", ".join(f"{k} {wall * 1000:.0f} ms (CPU {cpu * 1000:.0f} ms)"
                     for k, (wall, cpu) in times.items())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="*", default=["r18vd", "r50vd"],
                        help="forward-latency models (none: the training step only)")
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--train-config", default="r18vd")
    parser.add_argument("--train-batch", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=640)
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--fuse", action="store_true",
                        help="add our model with BatchNorm folded into the convolutions (--fuse)")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, load average {load():.2f}")

    rows = []
    for name in args.configs:
        fns, diff = forward_fns(args, name)
        with torch.no_grad():
            times = compare(fns, args.rounds, args.warmup, args.runs)
            if args.profile:
                for side, fn in fns.items():
                    profile(f"{name} forward, {side}", fn)
        print(f"{name} forward at {args.size}: {summary(times)}"
              f" (max |sorted logit difference| {diff:.2g}; load {load():.2f})", flush=True)
        rows += rows_for(f"{name} forward, batch 1, {args.size}", times)
    if not args.skip_train:
        fns, (ours_loss, hf_loss) = train_fns(args)
        times = compare(fns, args.rounds, 1, args.train_steps)
        if args.profile:
            for side, fn in fns.items():
                profile(f"{args.train_config} train step, {side}", fn)
        print(f"{args.train_config} train step: first-step total loss ours {ours_loss:.4f}, HF "
              f"{hf_loss:.4f}; {summary(times)} "
              f"(load {load():.2f})", flush=True)
        rows += rows_for(f"{args.train_config} train step (AdamW), batch {args.train_batch}, "
                         f"{args.train_size}", times)
    print()
    print(tabulate(rows, headers=["what", "model", "wall ms", "CPU ms", "ours / HF (wall)",
                                  "ours / HF (CPU)"], tablefmt="github"))


if __name__ == "__main__":
    main()

"""Paddle side of benchmarks/train_speed_picodet.py: one ppdet PicoDet training step, timed.

Runs under the Paddle interpreter only (never imports torch):

    python train_speed_picodet_paddle.py CONFIG.yml BATCH.npz OUT.json [--epoch-id E]
                                         [--warmup 3] [--iters 10] [--threads 2]

Builds ppdet's PicoDet from CONFIG (random init) with the optimizer and LR schedule ppdet's
``Trainer`` builds (``create('LearningRate')(steps_per_epoch)``, ``create('OptimizerBuilder')``),
then repeats what ``Trainer.train`` does for one batch without AMP: ``model(data)``,
``loss.backward()``, ``optimizer.step()``, ``lr.step()``, ``optimizer.clear_grad()``. The batch
(BATCH.npz: ``image_norm`` (B, 3, H, W) float32 normalised as NormalizeImage does, ``gt_bboxes``,
``gt_labels``, ``pad_gt_mask``) is the same every step. OUT.json gets the per-step times of the
steps after ``--warmup`` (seconds), the losses, ``ru_maxrss`` (KiB) before the first step and after
the last, and the oneDNN flag. CPU threads: ``--threads`` via Paddle's math-library setting (set
OMP_NUM_THREADS / MKL_NUM_THREADS to the same value in the environment).
"""
import argparse
import json
import resource
import time

import numpy as np
import paddle


def maxrss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("batch")
    parser.add_argument("out")
    parser.add_argument("--epoch-id", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from ppdet.core.workspace import create, load_config

    paddle.set_device("cpu")
    paddle.base.core.set_num_threads(args.threads)
    cfg = load_config(args.config)
    model = create(cfg.architecture)
    lr = create("LearningRate")(100)
    optimizer = create("OptimizerBuilder")(lr, model)
    batch = np.load(args.batch)
    model.train()

    def step():
        data = {"image": paddle.to_tensor(batch["image_norm"]),
                "gt_class": paddle.to_tensor(batch["gt_labels"]),
                "gt_bbox": paddle.to_tensor(batch["gt_bboxes"]),
                "pad_gt_mask": paddle.to_tensor(batch["pad_gt_mask"]),
                "im_id": paddle.to_tensor(
                    np.arange(len(batch["image_norm"]), dtype=np.int64)[:, None]),
                "epoch_id": args.epoch_id}
        outputs = model(data)
        loss = outputs["loss"]
        loss.backward()
        optimizer.step()
        lr.step()
        optimizer.clear_grad()
        return float(loss.numpy())

    before = maxrss_kib()
    times, losses = [], []
    for i in range(args.warmup + args.iters):
        start = time.perf_counter()
        losses.append(step())
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    with open(args.out, "w") as f:
        json.dump(dict(times=times, losses=losses, maxrss_before=before, maxrss_after=maxrss_kib(),
                       use_mkldnn=paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"]), f)


if __name__ == "__main__":
    main()

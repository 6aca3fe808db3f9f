"""Paddle side of benchmarks/speed_solov2.py: ppdet 2.6.0 SOLOv2 inference, Matrix NMS and one
training step, timed.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_speed_solov2.py infer CONFIG.yml WEIGHTS.pdparams HEIGHT WIDTH IMAGE OUT.json
    python paddle_speed_solov2.py nms IN.npz OUT.json
    python paddle_speed_solov2.py train CONFIG.yml BATCH.npz OUT.json
    (each with [--warmup 1] [--runs 3] [--threads 2])

``infer``: ppdet's SOLOv2 for CONFIG with the EvalReader resize target (HEIGHT, WIDTH); if
WEIGHTS does not exist it gets the random weights of tests/reference/paddle_solov2_e2e.py and
saves them there, else it loads them. One run is image file -> EvalReader sample transforms ->
model -> post-processing (the 0-D indexing of Paddle 3 patched as in the parity tests) -> masks
as numpy. ``nms``: ``MaskMatrixNMS`` (the config's defaults) on IN.npz's ``seg_masks``,
``cate_labels``, ``cate_scores``, ``sum_masks``. ``train``: the model of CONFIG (random init),
its ``LearningRate`` and ``OptimizerBuilder``; one step is ``model(data)``, backward, optimizer
step, LR step, clear_grad on BATCH.npz (``image`` normalised, ``ins_label{l}``, ``cate_label{l}``,
``grid_order{l}``, ``fg_num``). OUT.json: per-run seconds, ``ru_maxrss`` (KiB) before and after.
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import paddle

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))


def maxrss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def timed(fn, warmup, runs):
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        fn()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def infer(args):
    from paddle_solov2_e2e import build_model, patch_post_processing, randomize

    model, transform = build_model(args.config, (int(args.height), int(args.width)))
    if os.path.exists(args.weights):
        model.set_state_dict(paddle.load(args.weights))
        model.eval()
    else:
        sample = transform({"im_file": args.image})
        randomize(model, sample["image"][None].astype(np.float32))
        paddle.save(model.state_dict(), args.weights)
    patch_post_processing(model.solov2_head)
    found = []

    def detect():
        sample = transform({"im_file": args.image})
        inputs = {"image": paddle.to_tensor(sample["image"][None]),
                  "im_shape": paddle.to_tensor(np.asarray(sample["im_shape"], np.float32)[None]),
                  "scale_factor": paddle.to_tensor(
                      np.asarray(sample["scale_factor"], np.float32)[None])}
        with paddle.no_grad():
            pred = model(inputs)
        found[:] = [pred["segm"].numpy().shape[0]]

    return dict(times=timed(detect, args.warmup, args.runs), instances=found[0])


def nms(args):
    from paddle_solov2_head import Paddle2MaskMatrixNMS

    data = np.load(args.inputs)
    matrix_nms = Paddle2MaskMatrixNMS(update_threshold=0.05, pre_nms_top_n=500,
                                      post_nms_top_n=100, kernel="gaussian", sigma=2.0)
    seg_masks = paddle.to_tensor(data["seg_masks"])
    tensors = [paddle.to_tensor(data[k]) for k in ("cate_labels", "cate_scores", "sum_masks")]
    seg_preds = seg_masks.astype("float32")
    return dict(times=timed(lambda: [t.numpy() for t in matrix_nms(
        seg_preds, seg_masks.astype("float32"), *tensors)], args.warmup, args.runs))


def train(args):
    from ppdet.core.workspace import create, load_config

    cfg = load_config(args.config)
    model = create(cfg.architecture)
    lr = create("LearningRate")(100)
    optimizer = create("OptimizerBuilder")(lr, model)
    batch = dict(np.load(args.batch))
    model.train()

    def step():
        data = {k: paddle.to_tensor(v) for k, v in batch.items()}
        data["epoch_id"] = 0
        loss = model(data)["loss"]
        loss.backward()
        optimizer.step()
        lr.step()
        optimizer.clear_grad()

    before = maxrss_kib()
    return dict(times=timed(step, args.warmup, args.runs), maxrss_before=before)


def main(argv=None):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("infer")
    for name in ("config", "weights", "height", "width", "image", "out"):
        p.add_argument(name)
    p = sub.add_parser("nms")
    p.add_argument("inputs")
    p.add_argument("out")
    p = sub.add_parser("train")
    for name in ("config", "batch", "out"):
        p.add_argument(name)
    for p in sub.choices.values():
        p.add_argument("--warmup", type=int, default=1)
        p.add_argument("--runs", type=int, default=3)
        p.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    paddle.set_device("cpu")
    paddle.base.core.set_num_threads(args.threads)
    result = dict(infer=infer, nms=nms, train=train)[args.mode](args)
    result["maxrss_after"] = maxrss_kib()
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()

"""Paddle side of benchmarks/latency_picodet.py: ppdet's PicoDet latency, image file -> boxes.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_latency_picodet.py CONFIG.yml WEIGHTS.pdparams IMAGE OUT.json
                                     [--warmup 5] [--runs 30] [--threads 2] [--cls-bias B]

If WEIGHTS does not exist yet, the model gets random weights and BN statistics calibrated on
IMAGE (tests/reference/paddle_picodet_head.randomize) with every classification bias set to
``--cls-bias`` (so that, as with trained weights, only a small share of the anchor/class pairs
pass the NMS score threshold), and they are saved there; otherwise they are loaded from it. One
timed run is what ``ppdet``'s inference does for an image: the config's TestReader transforms
(Decode, Resize, NormalizeImage, Permute) on the file, the model forward in eval mode and the
MultiClassNMS, until the boxes are a numpy array. OUT.json gets the per-run times (seconds) and the
detection count. CPU threads: ``--threads`` via Paddle's math-library setting (set
OMP_NUM_THREADS / MKL_NUM_THREADS to the same value in the environment).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import paddle

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))

from paddle_picodet_e2e import build_model, model_inputs  # noqa: E402
from paddle_picodet_head import randomize  # noqa: E402


def prepare_weights(model, transform, image, path, cls_bias):
    if os.path.exists(path):
        model.set_state_dict(paddle.load(path))
        return
    batch = paddle.to_tensor(transform({"im_file": image})["image"][None].astype(np.float32))
    randomize(model, lambda net, rng: net.head(net.neck(net.backbone({"image": batch}))))
    for name, param in model.named_parameters():
        if "head_cls" in name and name.endswith("bias"):
            param.set_value(np.full(param.shape, cls_bias, np.float32))
    paddle.save(model.state_dict(), path)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("weights")
    parser.add_argument("image")
    parser.add_argument("out")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cls-bias", type=float, default=-6.0)
    args = parser.parse_args(argv)

    paddle.base.core.set_num_threads(args.threads)
    model, transform = build_model(args.config)
    prepare_weights(model, transform, args.image, args.weights, args.cls_bias)
    model.eval()

    def detect():
        with paddle.no_grad():
            pred = model(model_inputs(transform({"im_file": args.image})))
        return pred["bbox"].numpy()[: int(pred["bbox_num"].numpy()[0])]

    times = []
    for i in range(args.warmup + args.runs):
        start = time.perf_counter()
        boxes = detect()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    with open(args.out, "w") as f:
        json.dump(dict(times=times, detections=len(boxes),
                       use_mkldnn=paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"]), f)


if __name__ == "__main__":
    main()

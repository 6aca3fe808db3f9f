"""Reference side of benchmarks/latency_rtmdet.py: mmdet 3.3.0's RTMDet on the CPU.

    python mmdet_latency_rtmdet.py CONFIG.py IN.npz OUT_DIR [--threads 1] [--warmup 2]
        [--runs 5] [--cls-bias -6]

Run with mmdet importable (``PYTHONPATH=<mmdet site>:tests/reference``, as
tests/conftest.py::run_mmdet does); never imports mmdet_lite. Builds the model from its config
with random weights (seed 0; BatchNorm statistics drawn at random so they are not trivial,
classification biases ``--cls-bias`` so that, as with trained weights, few anchors pass the 0.001
score threshold), saves them to OUT_DIR/mmdet.pth (``{"meta", "state_dict"}`` as mmdet saves), and
writes OUT_DIR/mmdet.npz: ``scores`` (1, A, C) sigmoid and ``bboxes`` (1, A, 4) of IN.npz's
``image`` (uint8 (H, W, 3) BGR, already test-size) through ``DetDataPreprocessor`` + ``_forward``
+ the head's box decoding, and OUT_DIR/mmdet_times.json: the median seconds of ``forward``
(``_forward`` on the preprocessed batch) and ``end_to_end`` (``inference_detector`` on IN.npz's
``original`` BGR array: test pipeline, preprocessor, forward, NMS).
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import mmdet_stubs  # noqa: F401  (imported before mmdet, which the functions import)


def median_seconds(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def build(config, cls_bias):
    from mmdet.registry import MODELS
    from mmengine.config import Config

    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    cfg.test_dataloader.dataset.pipeline[0].type = "mmdet.LoadImageFromNDArray"
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
    for conv in model.bbox_head.rtm_cls:
        torch.nn.init.constant_(conv.bias, cls_bias)
    model.cfg = cfg
    return model.eval()


def flat_outputs(model, batch):
    """``_forward`` -> (scores (1, A, C) sigmoid, boxes (1, A, 4) x1y1x2y2), levels in order."""
    head = model.bbox_head
    cls_scores, bbox_preds = model._forward(batch)
    sizes = [c.shape[-2:] for c in cls_scores]
    priors = torch.cat(head.prior_generator.grid_priors(sizes, device=batch.device))
    scores = torch.cat([c.permute(0, 2, 3, 1).reshape(1, -1, head.cls_out_channels)
                        for c in cls_scores], 1).sigmoid()
    dists = torch.cat([b.permute(0, 2, 3, 1).reshape(1, -1, 4) for b in bbox_preds], 1)
    return scores, head.bbox_coder.decode(priors[None], dists)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("inputs")
    parser.add_argument("out_dir")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cls-bias", type=float, default=-6.0)
    args = parser.parse_args()
    from mmdet.apis import inference_detector
    from mmdet.utils import register_all_modules

    torch.set_num_threads(args.threads)
    register_all_modules()
    out = Path(args.out_dir)
    model = build(args.config, args.cls_bias)
    torch.save({"meta": {"mmdet_version": "3.3.0"}, "state_dict": model.state_dict()},
               out / "mmdet.pth")

    arrays = np.load(args.inputs)
    image = torch.from_numpy(np.ascontiguousarray(arrays["image"].transpose(2, 0, 1)))
    with torch.no_grad():
        batch = model.data_preprocessor({"inputs": [image]}, False)["inputs"]
        scores, boxes = flat_outputs(model, batch)
        np.savez(out / "mmdet.npz", scores=scores.numpy(), bboxes=boxes.numpy())
        forward = median_seconds(lambda: model._forward(batch), args.warmup, args.runs)
    original = arrays["original"]
    end_to_end = median_seconds(lambda: inference_detector(model, original), args.warmup,
                                args.runs)
    (out / "mmdet_times.json").write_text(json.dumps({"forward": forward,
                                                     "end_to_end": end_to_end}))


if __name__ == "__main__":
    main()

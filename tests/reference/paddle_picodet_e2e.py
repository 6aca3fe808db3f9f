"""Paddle-side reference for the end-to-end PicoDet parity test (image files -> detections).

Runs under the Paddle interpreter only (never imports torch):

    python paddle_picodet_e2e.py CONFIG.yml OUT_DIR IMAGE [IMAGE ...]

Builds ppdet's PicoDet from CONFIG, gives it random weights and BN statistics calibrated on the
images (then perturbed; see ``paddle_picodet_head.randomize``) and saves them with ``paddle.save``
to OUT_DIR/model.pdparams. Every IMAGE file then goes through the config's own ``TestReader``
sample transforms (Decode, Resize(keep_ratio=False, interp=2), NormalizeImage, Permute) and the
model in eval mode with ``{image, im_shape, scale_factor}``, exactly as ``ppdet``'s inference
does. OUT_DIR/outputs.npz holds, for image k: ``image{k}`` (the normalised CHW input),
``im_shape{k}``, ``scale_factor{k}``, the head's raw ``scores{k}`` (1, C, A) and ``bboxes{k}``
(1, A, 4) before post-processing, and the final ``bbox{k}`` rows [label, score, x1, y1, x2, y2]
with ``bbox_num{k}``. With random weights every anchor/class pair passes the configured score
threshold (0.025), so ``keep_top_k`` decides the count; a second NMS setting where the threshold
decides is run through the head's own ``post_process`` on the same raw outputs: ``threshold{k}``
(between two raw scores at least ``GAP`` apart, below about ``RANK`` pairs) and the resulting
``bbox_thr{k}`` / ``bbox_num_thr{k}``.
"""
import os
import sys

import numpy as np
import paddle
from paddle_picodet_head import randomize

RANK, GAP = 60, 2e-5


def pick_threshold(scores):
    """A score threshold with about ``RANK`` pairs above it and no score within ``GAP / 2``."""
    values = np.unique(scores)[::-1]
    for i in range(RANK, len(values) - 1):
        if values[i] - values[i + 1] > GAP:
            return float((values[i] + values[i + 1]) / 2)
    raise SystemExit("no isolated score threshold found")


def build_model(config):
    """ppdet's PicoDet for ``config`` (in eval mode) and the config's TestReader transforms."""
    from ppdet.core.workspace import create, load_config
    from ppdet.data.reader import Compose

    paddle.set_device("cpu")
    cfg = load_config(config)
    model = create(cfg.architecture)
    model.eval()
    return model, Compose(cfg.TestReader["sample_transforms"], num_classes=cfg.num_classes)


def model_inputs(sample):
    """A transformed sample -> the batch-of-one input dict of ppdet's eval forward."""
    return {"image": paddle.to_tensor(sample["image"][None]),
            "im_shape": paddle.to_tensor(np.asarray(sample["im_shape"], np.float32)[None]),
            "scale_factor": paddle.to_tensor(np.asarray(sample["scale_factor"], np.float32)[None])}


def main(config, out_dir, *images):
    model, transform = build_model(config)
    samples = [transform({"im_file": path}) for path in images]
    batch = np.stack([s["image"] for s in samples]).astype(np.float32)

    def calibrate_run(net, rng):  # BN statistics from the test images themselves, then perturbed
        net.head(net.neck(net.backbone({"image": paddle.to_tensor(batch)})))

    randomize(model, calibrate_run)
    paddle.save(model.state_dict(), os.path.join(out_dir, "model.pdparams"))

    raw = {}

    def keep_raw(layer, inputs, outputs):  # copy now: post_process divides the boxes in place
        raw["scores"], raw["bboxes"] = outputs[0].numpy(), outputs[1].numpy()

    model.head.register_forward_post_hook(keep_raw)
    out = {}
    for k, sample in enumerate(samples):
        inputs = model_inputs(sample)
        with paddle.no_grad():
            pred = model(inputs)
        out[f"image{k}"] = sample["image"]
        out[f"im_shape{k}"] = inputs["im_shape"].numpy()
        out[f"scale_factor{k}"] = inputs["scale_factor"].numpy()
        out[f"scores{k}"], out[f"bboxes{k}"] = raw["scores"], raw["bboxes"]
        out[f"bbox{k}"], out[f"bbox_num{k}"] = pred["bbox"].numpy(), pred["bbox_num"].numpy()
        threshold, nms = pick_threshold(raw["scores"]), model.head.nms
        default, nms.score_threshold = nms.score_threshold, threshold
        bbox, bbox_num = model.head.post_process(
            (paddle.to_tensor(raw["scores"]), paddle.to_tensor(raw["bboxes"])),
            inputs["scale_factor"])
        nms.score_threshold = default
        out[f"threshold{k}"] = np.float64(threshold)
        out[f"bbox_thr{k}"], out[f"bbox_num_thr{k}"] = bbox.numpy(), bbox_num.numpy()
    np.savez(os.path.join(out_dir, "outputs.npz"), **out)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])

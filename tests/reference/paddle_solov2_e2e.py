"""Paddle-side reference for the end-to-end SOLOv2 parity (image files -> instances).

Runs under the Paddle interpreter only (never imports torch):

    python paddle_solov2_e2e.py CONFIG.yml OUT_DIR HEIGHT WIDTH IMAGE [IMAGE ...]

Builds ppdet's SOLOv2 from CONFIG with the EvalReader's keep-ratio ``Resize`` target set to
(HEIGHT, WIDTH), gives it random weights: backbone and neck as in
``paddle_solov2_backbone_neck`` (non-trivial BN statistics, every backbone DCN calibrated on the
first image to offsets of several pixels, FPN outputs scaled to a unit root mean square), the
heads as in ``paddle_solov2_head.randomize``
(GroupNorm away from identity, DCN offsets of pixels, category logits biased so that many cells
are candidates) and saves them with ``paddle.save`` to OUT_DIR/model.pdparams. Every IMAGE then
goes through the EvalReader's sample transforms (Decode, NormalizeImage, Resize, Permute; every
resized size must be a multiple of 32 so that PadBatch pads nothing) and the model in eval mode
with ``{image, im_shape, scale_factor}``, its post-processing with ``paddle2_semantics`` applied.
OUT_DIR/outputs.npz holds, for image k: ``image{k}`` (the normalised CHW input),
``im_shape{k}``, ``scale_factor{k}``, ``backbone{k}_{lvl}``, ``neck{k}_{lvl}``, the head's eval
outputs ``cate{k}_{lvl}`` (1, S, S, C) and ``kernel{k}_{lvl}`` (1, E, S, S), ``seg_pred{k}``
(1, E, h, w), and the instances ``segm{k}`` (K, H, W), ``label{k}``, ``score{k}``.
"""
import os
import sys

import numpy as np
import paddle
from paddle_backbone_neck import randomize as randomize_backbone_neck
from paddle_solov2_backbone_neck import spread_offsets
from paddle_solov2_head import Paddle2MaskMatrixNMS, paddle2_semantics
from paddle_solov2_head import randomize as randomize_head


def build_model(config, target_size):
    """ppdet's SOLOv2 for ``config`` and its EvalReader sample transforms, resizing to
    ``target_size`` (h, w) with keep_ratio."""
    from ppdet.core.workspace import create, load_config
    from ppdet.data.reader import Compose

    paddle.set_device("cpu")
    cfg = load_config(config)
    transforms = cfg.EvalReader["sample_transforms"]
    resize = [t["Resize"] for t in transforms if "Resize" in t]
    assert len(resize) == 1 and resize[0]["keep_ratio"], transforms
    resize[0]["target_size"] = list(target_size)
    model = create(cfg.architecture)
    return model, Compose(transforms, num_classes=cfg.num_classes)


def randomize(model, image, seed=0):
    """Random weights and statistics in place (see the module docstring); eval mode."""
    rng = np.random.RandomState(seed)
    randomize_backbone_neck(model.backbone, rng)
    randomize_backbone_neck(model.neck, rng)
    randomize_head(model.solov2_head, rng)
    randomize_head(model.mask_head, rng)
    model.eval()
    spread_offsets(model.backbone, image, rng)
    unit_fpn_outputs(model, image)


def unit_fpn_outputs(model, image):
    """Scale the FPN output convs (linear, no norm) so that the neck's outputs on ``image`` have
    a root mean square of 1, as the heads' random weights expect (random BN statistics through
    a ResNet leave them at hundreds; the heads' DCN offsets would span hundreds of pixels)."""
    with paddle.no_grad():
        feats = model.neck(model.backbone({"image": paddle.to_tensor(image)}))
    rms = float(np.sqrt(np.mean(np.concatenate([f.numpy().ravel() for f in feats]) ** 2)))
    for conv in model.neck.fpn_convs:
        for param in conv.parameters():
            param.set_value((param.numpy() / rms).astype(np.float32))


def patch_post_processing(head):
    """ppdet's post-processing with Paddle 2's indexing semantics (never in site-packages)."""
    get_seg_single = paddle2_semantics(type(head).get_seg_single, expected_sites=6)
    head.get_seg_single = get_seg_single.__get__(head)
    head.mask_nms.__class__ = Paddle2MaskMatrixNMS


def main(config, out_dir, height, width, *images):
    model, transform = build_model(config, (int(height), int(width)))
    samples = [transform({"im_file": path}) for path in images]
    for path, sample in zip(images, samples):
        assert all(s % 32 == 0 for s in sample["image"].shape[1:]), (path, sample["image"].shape)
    randomize(model, samples[0]["image"][None].astype(np.float32))
    paddle.save(model.state_dict(), os.path.join(out_dir, "model.pdparams"))
    patch_post_processing(model.solov2_head)

    feats = {}
    model.backbone.register_forward_post_hook(
        lambda layer, inputs, outputs: feats.update(backbone=[f.numpy() for f in outputs]))
    model.neck.register_forward_post_hook(
        lambda layer, inputs, outputs: feats.update(neck=[f.numpy() for f in outputs]))
    out = {}
    for k, sample in enumerate(samples):
        inputs = {"image": paddle.to_tensor(sample["image"][None]),
                  "im_shape": paddle.to_tensor(np.asarray(sample["im_shape"], np.float32)[None]),
                  "scale_factor": paddle.to_tensor(
                      np.asarray(sample["scale_factor"], np.float32)[None])}
        with paddle.no_grad():
            pred = model(inputs)
        out[f"image{k}"] = sample["image"]
        out[f"im_shape{k}"] = inputs["im_shape"].numpy()
        out[f"scale_factor{k}"] = inputs["scale_factor"].numpy()
        for part in ("backbone", "neck"):
            out.update({f"{part}{k}_{lvl}": f for lvl, f in enumerate(feats[part])})
        out.update({f"cate{k}_{lvl}": c.numpy() for lvl, c in enumerate(model.cate_pred_list)})
        out.update({f"kernel{k}_{lvl}": c.numpy() for lvl, c in enumerate(model.kernel_pred_list)})
        out[f"seg_pred{k}"] = model.seg_pred.numpy()
        out[f"segm{k}"] = pred["segm"].numpy().astype(np.uint8)
        out[f"label{k}"], out[f"score{k}"] = pred["cate_label"].numpy(), pred["cate_score"].numpy()
    np.savez_compressed(os.path.join(out_dir, "outputs.npz"), **out)


if __name__ == "__main__":
    if len(sys.argv) < 6:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])

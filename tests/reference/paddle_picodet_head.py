"""Paddle-side reference for the PicoDet head/detector and MultiClassNMS parity tests.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_picodet_head.py model CONFIG.yml OUT_DIR
        builds ppdet's PicoDet from CONFIG, gives it random weights and BN statistics, saves them
        to OUT_DIR/model.pdparams, runs it in eval mode on two random normalised inputs of
        different sizes and saves OUT_DIR/outputs.npz: for input k, ``image{k}``, ``im_shape{k}``,
        ``scale_factor{k}``, the head's raw ``scores{k}`` (N, C, A) and ``bboxes{k}`` (N, A, 4)
        before NMS, and the final ``bbox{k}`` rows [label, score, x1, y1, x2, y2], ``bbox_num{k}``.
    python paddle_picodet_head.py units OUT_DIR
        runs ppdet.modeling.ops.multiclass_nms on random boxes/scores for a few settings and saves
        inputs and outputs to OUT_DIR/nms.npz; builds a small PicoHeadV2 variant (see
        ``HEAD_VARIANT``), saves its random weights to OUT_DIR/head_variant.pdparams and its
        inputs and raw eval outputs to OUT_DIR/head_variant.npz.
"""
import os
import sys

import numpy as np
import paddle

# Each entry: (image shape, scale_factor (sy, sx)).
INPUTS = [((1, 3, 320, 320), (0.8, 0.6)), ((1, 3, 416, 384), (1.3, 0.75))]
NMS_SETTINGS = [
    dict(score_threshold=0.025, nms_top_k=1000, keep_top_k=100, nms_threshold=0.6),
    dict(score_threshold=0.3, nms_top_k=20, keep_top_k=30, nms_threshold=0.5),
    dict(score_threshold=0.5, nms_top_k=-1, keep_top_k=-1, nms_threshold=0.3),
]
HEAD_VARIANT = dict(
    num_classes=5, feat_in_chan=32, fpn_stride=[8, 16, 32], reg_max=4, cell_offset=0.5,
    use_align_head=False,
    conv_feat=dict(num_fpn_stride=3, num_convs=2, share_cls_reg=False, use_se=False,
                   act="leaky_relu"),
    shapes=[(2, 32, 16, 12), (2, 32, 8, 6), (2, 32, 4, 3)],
)


def randomize(model, calibrate_run, seed=0):
    """Random weights and BN statistics that keep the random network well conditioned.

    Conv weights are fan-in scaled; BN statistics are calibrated on a batch of random inputs (so
    activations stay O(1) instead of vanishing or exploding), floored and perturbed; BN scales are
    small and shifts positive, which keeps the activations near their linear range. A random net
    in its chaotic regime would amplify float32 rounding far past the parity tolerances.
    ``calibrate_run(model, rng)`` runs the model once on random inputs.
    """
    rng = np.random.RandomState(seed)
    norms = [layer for layer in model.sublayers() if hasattr(layer, "_mean")]
    norm_params = {id(p): i for layer in norms for i, p in enumerate((layer.weight, layer.bias))}
    tensors = dict(model.named_parameters())
    for name in sorted(tensors):
        shape = tuple(tensors[name].shape)
        if id(tensors[name]) in norm_params:
            low, high = ((0.3, 0.6), (0.5, 2.0))[norm_params[id(tensors[name])]]
            value = rng.uniform(low, high, shape)
        elif len(shape) == 4:
            gain = 1.0 if "head_cls" in name else 1.0  # unsaturated, well separated scores
            value = rng.normal(0.0, gain / np.sqrt(np.prod(shape[1:])), shape)
        elif "head_cls" in name:
            value = rng.uniform(-2.5, -1.5, shape)
        else:
            value = rng.normal(0.0, 0.2, shape)
        tensors[name].set_value(value.astype(np.float32))

    def calibrate(layer, inputs):
        x = inputs[0]
        mean, var = x.mean(axis=[0, 2, 3]), x.var(axis=[0, 2, 3], unbiased=False)
        var = var + 0.2 * var.mean()  # no near-constant channel gets amplified
        noise = paddle.to_tensor(rng.normal(0.0, 0.1, mean.shape).astype(np.float32))
        factor = paddle.to_tensor(rng.uniform(0.7, 1.3, var.shape).astype(np.float32))
        layer._mean.set_value(mean + noise * var.sqrt())
        layer._variance.set_value(var * factor)

    hooks = [layer.register_forward_pre_hook(calibrate) for layer in norms]
    model.eval()
    with paddle.no_grad():
        calibrate_run(model, rng)
    for hook in hooks:
        hook.remove()


def run_detector(model, rng):
    image = rng.normal(0.0, 1.0, (4, 3, 320, 320)).astype(np.float32)
    model.head(model.neck(model.backbone({"image": paddle.to_tensor(image)})))


def run_model(config, out_dir):
    from ppdet.core.workspace import create, load_config

    paddle.set_device("cpu")
    cfg = load_config(config)
    model = create(cfg.architecture)
    # eval_size fixes the anchors to the configured size; the reference must follow the input size.
    model.head.eval_size = None
    randomize(model, run_detector)
    paddle.save(model.state_dict(), os.path.join(out_dir, "model.pdparams"))

    raw = {}

    def keep_raw(layer, inputs, outputs):  # before post_process divides the boxes in place
        raw["scores"], raw["bboxes"] = outputs[0].numpy(), outputs[1].numpy()

    model.head.register_forward_post_hook(keep_raw)
    rng = np.random.RandomState(1)
    out = {}
    for k, (shape, scale_factor) in enumerate(INPUTS):
        image = rng.normal(0.0, 1.0, shape).astype(np.float32)
        im_shape = np.array([shape[2:]], dtype=np.float32)
        scale = np.array([scale_factor], dtype=np.float32)
        with paddle.no_grad():
            pred = model({"image": paddle.to_tensor(image), "im_shape": paddle.to_tensor(im_shape),
                          "scale_factor": paddle.to_tensor(scale)})
        out[f"scores{k}"], out[f"bboxes{k}"] = raw["scores"], raw["bboxes"]
        out[f"image{k}"], out[f"im_shape{k}"], out[f"scale_factor{k}"] = image, im_shape, scale
        out[f"bbox{k}"], out[f"bbox_num{k}"] = pred["bbox"].numpy(), pred["bbox_num"].numpy()
    np.savez(os.path.join(out_dir, "outputs.npz"), **out)


def run_nms(out_dir):
    from ppdet.modeling.ops import multiclass_nms

    rng = np.random.RandomState(2)
    num_boxes, num_classes = 400, 6
    xy = rng.uniform(0, 200, (num_boxes, 2))
    wh = rng.uniform(5, 60, (num_boxes, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, (num_boxes, num_classes)).astype(np.float32)
    scores[:50, 0] = 0.75  # ties, resolved by index in Paddle's stable sorts
    out = {"boxes": boxes, "scores": scores}
    for k, setting in enumerate(NMS_SETTINGS):
        bbox, bbox_num, _ = multiclass_nms(paddle.to_tensor(boxes[None]),
                                           paddle.to_tensor(scores.T[None].copy()),
                                           normalized=True, **setting)
        out[f"out{k}"], out[f"num{k}"] = bbox.numpy(), bbox_num.numpy()
    np.savez(os.path.join(out_dir, "nms.npz"), **out)


def run_head_variant(out_dir):
    """A standalone PicoHeadV2 on the paths the configs leave out: separate cls/reg towers without
    SE, no align head, leaky ReLU, reg_max 4, three strides. Weights are saved with ``head.``."""
    from ppdet.modeling.heads.pico_head import PicoFeat, PicoHeadV2
    from ppdet.modeling.losses.varifocal_loss import VarifocalLoss

    feat = PicoFeat(feat_in=HEAD_VARIANT["feat_in_chan"], feat_out=HEAD_VARIANT["feat_in_chan"],
                    **HEAD_VARIANT["conv_feat"])
    kwargs = {k: v for k, v in HEAD_VARIANT.items() if k not in ("conv_feat", "shapes")}
    head = PicoHeadV2(conv_feat=feat, loss_class=VarifocalLoss(use_sigmoid=False), **kwargs)
    shapes = HEAD_VARIANT["shapes"]

    def run_head(model, rng):
        model([paddle.to_tensor(rng.normal(0.0, 1.0, (4,) + s[1:]).astype(np.float32))
               for s in shapes])

    randomize(head, run_head)
    rng = np.random.RandomState(3)
    feats = [rng.normal(0.0, 1.0, shape).astype(np.float32) for shape in shapes]
    with paddle.no_grad():
        scores, bboxes = head([paddle.to_tensor(f) for f in feats])
    paddle.save({f"head.{k}": v for k, v in head.state_dict().items()},
                os.path.join(out_dir, "head_variant.pdparams"))
    np.savez(os.path.join(out_dir, "head_variant.npz"), scores=scores.numpy(),
             bboxes=bboxes.numpy(), **{f"feat{i}": f for i, f in enumerate(feats)})


if __name__ == "__main__":
    if sys.argv[1] == "model":
        run_model(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "units":
        paddle.set_device("cpu")
        run_nms(sys.argv[2])
        run_head_variant(sys.argv[2])
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}; use 'model' or 'units'")

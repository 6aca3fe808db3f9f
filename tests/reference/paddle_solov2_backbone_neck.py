"""Paddle-side reference for the SOLOv2 ResNet / FPN parity tests.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_solov2_backbone_neck.py CONFIG.yml OUT_DIR [HEIGHT WIDTH [SEED]]

builds ppdet's SOLOv2 from CONFIG (one model per process) and writes to OUT_DIR:
``config.json`` (the merged ``ResNet`` and ``FPN`` sections, and the constructor defaults of
ppdet's ``ResNet`` and ``FPN``) and ``keys.json`` (``{name: shape}`` of the backbone and neck
tensors, ``backbone.*`` / ``neck.*``). With HEIGHT and WIDTH it also gives backbone and neck random
weights and non-trivial BN statistics (``paddle_backbone_neck.randomize``; every DCN
``conv_offset`` calibrated on the input so that the sampling offsets span several pixels) and writes
``backbone_neck.pdparams`` (``paddle.save``), ``param_attrs.json`` (``{name: [learning rate,
trainable, L2 coefficient or null]}`` of every trainable-kind parameter), a random
``input.npy`` (1, 3, HEIGHT, WIDTH) and ``outputs.npz`` (``backbone{i}``, ``neck{i}``, eval mode).
"""
import inspect
import json
import os
import sys

import numpy as np
import paddle
from paddle_backbone_neck import backbone_neck_state, randomize, save_outputs

# Standard deviation of the DCN sampling offsets (pixels of the layer's input) and spread of their
# bias; the mask logits get a standard deviation of 1.
OFFSET_STD = 3.0
OFFSET_BIAS = 1.0


def defaults(cls):
    return {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
            if k != "self" and p.default is not inspect.Parameter.empty}


def spread_offsets(backbone, image, rng):
    """One calibration pass: every DCN's ``conv_offset``, just before it runs, gets random weights
    scaled to the root mean square of its input, so that its offsets have a standard deviation of
    about OFFSET_STD pixels (plus a bias in +-OFFSET_BIAS) and its mask logits of about 1."""
    def calibrate(layer, inputs):
        weight = layer.weight.numpy()
        rms = float(np.sqrt(np.mean(inputs[0].numpy() ** 2)))
        rows = weight.shape[0] // 3 * 2
        gain = np.ones((weight.shape[0], 1, 1, 1), np.float32)
        gain[:rows] = OFFSET_STD
        std = gain / (rms * np.sqrt(weight[0].size))
        layer.weight.set_value((rng.normal(0.0, 1.0, weight.shape) * std).astype(np.float32))
        bias = np.zeros(weight.shape[0], np.float32)
        bias[:rows] = rng.uniform(-OFFSET_BIAS, OFFSET_BIAS, rows)
        layer.bias.set_value(bias)

    hooks = [layer.register_forward_pre_hook(calibrate) for name, layer in
             backbone.named_sublayers() if name.endswith(".conv_offset")]
    with paddle.no_grad():
        backbone({"image": paddle.to_tensor(image)})
    for hook in hooks:
        hook.remove()


def param_attrs(layer, prefix):
    """``{prefix.name: [learning rate, trainable, L2 coefficient or None]}`` (norm statistics left
    out)."""
    out = {}
    for name, param in layer.named_parameters():
        if name.endswith(("_mean", "_variance")):
            continue
        coeff = getattr(param.regularizer, "_coeff", None) if param.regularizer else None
        out[f"{prefix}.{name}"] = [float(param.optimize_attr["learning_rate"]),
                                   not param.stop_gradient, coeff]
    return out


def main(config, out_dir, size=None, seed=0):
    from ppdet.core.workspace import create, load_config
    from ppdet.modeling.backbones.resnet import ResNet
    from ppdet.modeling.necks.fpn import FPN

    paddle.set_device("cpu")
    cfg = load_config(config)
    model = create(cfg.architecture)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump({"ResNet": dict(cfg.ResNet), "FPN": dict(cfg.FPN),
                   "defaults": {"ResNet": defaults(ResNet), "FPN": defaults(FPN)}}, f)
    with open(os.path.join(out_dir, "keys.json"), "w") as f:
        json.dump({k: list(v.shape) for k, v in backbone_neck_state(model).items()}, f)
    if size is None:
        return

    rng = np.random.RandomState(seed)
    image = rng.uniform(-2.0, 2.0, (1, 3, *size)).astype(np.float32)
    randomize(model.backbone, rng)
    randomize(model.neck, rng)
    model.eval()
    spread_offsets(model.backbone, image, rng)
    paddle.save(backbone_neck_state(model), os.path.join(out_dir, "backbone_neck.pdparams"))
    attrs = param_attrs(model.backbone, "backbone")
    attrs.update(param_attrs(model.neck, "neck"))
    with open(os.path.join(out_dir, "param_attrs.json"), "w") as f:
        json.dump(attrs, f)

    save_outputs(model, image, out_dir)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2],
         (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else None,
         int(sys.argv[5]) if len(sys.argv) > 5 else 0)

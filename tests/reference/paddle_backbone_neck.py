"""Paddle-side reference for the LCNet / LCPAN / CSPPAN parity tests.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_backbone_neck.py CONFIG.yml OUT_DIR HEIGHT WIDTH [SEED]

builds ppdet's PicoDet from CONFIG (one per process: ppdet's LCPAN mutates a default argument),
gives its backbone and neck random weights and non-trivial BN statistics, saves them with
``paddle.save`` to OUT_DIR/backbone_neck.pdparams (keys ``backbone.*`` and ``neck.*``), saves a
random (1, 3, HEIGHT, WIDTH) input to OUT_DIR/input.npy, runs backbone and neck in eval mode and
saves OUT_DIR/outputs.npz with ``backbone{i}`` and ``neck{i}`` arrays.
"""
import os
import sys

import numpy as np
import paddle


def randomize(layer, rng):
    """Fan-in scaled conv weights, random biases, BN affine and BN running statistics, in place."""
    tensors = dict(layer.named_parameters())
    tensors.update(layer.named_buffers())
    for name in sorted(tensors):
        shape = tuple(tensors[name].shape)
        if name.endswith("_mean"):
            value = rng.uniform(-0.2, 0.2, shape)
        elif name.endswith("_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 4:
            value = rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
        elif name.endswith("weight"):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.uniform(-0.2, 0.2, shape)
        tensors[name].set_value(value.astype(np.float32))


def backbone_neck_state(model):
    """The backbone and neck tensors under the detector's names (``backbone.*``, ``neck.*``)."""
    state = {f"backbone.{k}": v for k, v in model.backbone.state_dict().items()}
    state.update({f"neck.{k}": v for k, v in model.neck.state_dict().items()})
    return state


def save_outputs(model, image, out_dir):
    """Save ``image`` to OUT_DIR/input.npy and the eval-mode backbone and neck outputs on it to
    OUT_DIR/outputs.npz (``backbone{i}``, ``neck{i}``)."""
    np.save(os.path.join(out_dir, "input.npy"), image)
    with paddle.no_grad():
        feats = model.backbone({"image": paddle.to_tensor(image)})
        necks = model.neck(feats)
    out = {f"backbone{i}": f.numpy() for i, f in enumerate(feats)}
    out.update({f"neck{i}": f.numpy() for i, f in enumerate(necks)})
    np.savez(os.path.join(out_dir, "outputs.npz"), **out)
    print(" ".join(f"{k}{list(v.shape)}" for k, v in out.items()))


def main(config, out_dir, height, width, seed=0):
    from ppdet.core.workspace import create, load_config

    paddle.set_device("cpu")
    model = create(load_config(config).architecture)
    rng = np.random.RandomState(seed)
    randomize(model.backbone, rng)
    randomize(model.neck, rng)
    model.eval()
    paddle.save(backbone_neck_state(model), os.path.join(out_dir, "backbone_neck.pdparams"))
    save_outputs(model, rng.uniform(-2.0, 2.0, (1, 3, height, width)).astype(np.float32), out_dir)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
         int(sys.argv[5]) if len(sys.argv) > 5 else 0)

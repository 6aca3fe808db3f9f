"""Shared steps of the backbone + neck parity tests against ppdet (PicoDet's LCNet + necks,
SOLOv2's ResNet + FPN): the Paddle reference runs, and our outputs against the ones it saved
(``input.npy``, ``outputs.npz`` with ``backbone{i}`` / ``neck{i}``, as
tests/reference/paddle_backbone_neck.py ``save_outputs`` writes them)."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn as nn

from conftest import run_paddle


class BackboneNeck(nn.Module):
    """A backbone and a neck named as in the detector (``backbone.*``, ``neck.*``):
    (N, 3, H, W) -> (backbone maps, neck maps)."""

    def __init__(self, backbone, neck):
        super().__init__()
        self.backbone = backbone
        self.neck = neck

    def forward(self, x):
        feats = self.backbone(x)
        return feats, self.neck(feats)


def run_references(tmp_path_factory, script, runs, workers=2):
    """``runs``: ``{name: (config path, *extra arguments)}``; runs ``script CONFIG OUT_DIR
    *extra`` under Paddle once per name, ``workers`` at a time; returns ``{name: OUT_DIR}``."""
    def run(name):
        config, *extra = runs[name]
        out_dir = tmp_path_factory.mktemp(name)
        run_paddle(script, config, out_dir, *extra)
        return name, out_dir

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(run, runs))


def errors_against_paddle(model, out_dir, relative=False):
    """Run ``model`` (input -> ``(backbone maps, neck maps)``) on the saved input; return
    ``(feats, necks, errors)``, ``errors[key]`` the largest absolute difference from Paddle's map,
    divided by ``max(1, max |Paddle's map|)`` when ``relative``. Keys, shapes and non-degenerate
    references are asserted."""
    expected = np.load(out_dir / "outputs.npz")
    with torch.no_grad():
        feats, necks = model(torch.from_numpy(np.load(out_dir / "input.npy")))
    outputs = {f"backbone{i}": f for i, f in enumerate(feats)}
    outputs.update({f"neck{i}": f for i, f in enumerate(necks)})
    assert sorted(outputs) == sorted(expected.files)
    errors = {}
    for key, tensor in outputs.items():
        ref = expected[key]
        assert tuple(tensor.shape) == ref.shape, key
        assert np.abs(ref).max() > 0.05, f"{key}: reference output is degenerate"
        scale = max(1.0, float(np.abs(ref).max())) if relative else 1.0
        errors[key] = float(np.abs(tensor.numpy() - ref).max()) / scale
    return feats, necks, errors

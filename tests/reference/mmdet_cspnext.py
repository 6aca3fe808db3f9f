"""mmdet 3.3.0's CSPNeXt + CSPNeXtPAFPN, random weights and BN statistics, on a seeded input.

Usage: python mmdet_cspnext.py OUT_DIR [CONFIG.py NAME H W] (through tests/conftest.py::run_mmdet).
Writes, per variant (tiny, s, nano; or NAME: the backbone and neck of mmdet's CONFIG, SyncBN as BN,
input H x W), ``<name>.pth`` (state dict with ``backbone.`` / ``neck.`` keys) and ``<name>.npz``
(``x``, ``backbone_<i>``, ``neck_<i>``). Never imports mmdet_lite.
"""
import mmdet_stubs  # noqa: F401  (before mmdet)

# isort: split
import sys
from pathlib import Path

import numpy as np
import torch
from mmdet.models.backbones import CSPNeXt
from mmdet.models.necks import CSPNeXtPAFPN

VARIANTS = {  # deepen, widen, act, neck in channels, neck out channels
    "tiny": (0.167, 0.375, "SiLU", [96, 192, 384], 96),
    "s": (0.33, 0.5, "SiLU", [128, 256, 512], 128),
    "nano": (0.33, 0.25, "ReLU", [64, 128, 256], 64),
}


def randomize(module, gen):
    for name, tensor in module.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        if name.endswith("running_var"):
            tensor.copy_(torch.rand(tensor.shape, generator=gen) * 1.5 + 0.5)
        elif name.endswith("running_mean") or name.endswith("bias"):
            tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.2)
        elif "bn" in name and name.endswith("weight"):
            tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)


def run(out_dir, name, backbone, neck, size, gen):
    model = torch.nn.ModuleDict(dict(backbone=backbone, neck=neck)).eval()
    randomize(model, gen)
    x = torch.randn(1, 3, *size, generator=gen)
    with torch.no_grad():
        feats = backbone(x)
        outs = neck(feats)
    torch.save(model.state_dict(), out_dir / f"{name}.pth")
    arrays = {"x": x.numpy()}
    arrays.update({f"backbone_{i}": f.numpy() for i, f in enumerate(feats)})
    arrays.update({f"neck_{i}": f.numpy() for i, f in enumerate(outs)})
    np.savez(out_dir / f"{name}.npz", **arrays)


def from_config(path):
    from mmengine.config import Config

    cfg = Config.fromfile(path).model
    parts = []
    for part, cls in (("backbone", CSPNeXt), ("neck", CSPNeXtPAFPN)):
        kwargs = dict(cfg[part])
        kwargs.pop("type")
        kwargs.pop("init_cfg", None)
        kwargs["norm_cfg"] = dict(type="BN")
        parts.append(cls(**kwargs))
    return parts


def main(out_dir, config=None, name=None, height=None, width=None):
    out_dir = Path(out_dir)
    gen = torch.Generator().manual_seed(0)
    if config is not None:
        run(out_dir, name, *from_config(config), (int(height), int(width)), gen)
        return
    for name, (deepen, widen, act, neck_in, neck_out) in VARIANTS.items():
        norm, act_cfg = dict(type="BN"), dict(type=act, inplace=True)
        backbone = CSPNeXt(deepen_factor=deepen, widen_factor=widen, expand_ratio=0.5,
                           channel_attention=True, norm_cfg=norm, act_cfg=act_cfg)
        neck = CSPNeXtPAFPN(neck_in, neck_out, num_csp_blocks=max(round(3 * deepen), 1),
                            expand_ratio=0.5, norm_cfg=norm, act_cfg=act_cfg)
        run(out_dir, name, backbone, neck, (96, 128), gen)


if __name__ == "__main__":
    main(*sys.argv[1:])

#!/usr/bin/env python3
"""Backbone + neck parity with mmdet 3.3.0 for the five mmdet RTMDet configs, at several sizes.

    python benchmarks/parity_all_rtmdet.py [--sizes 320,640] [NAME ...]

The slow companion of tests/models/test_cspnext_parity.py: mmdet builds each config's CSPNeXt and
CSPNeXtPAFPN from its own config file (SyncBN as BN) with random weights and BN statistics;
RTMDET_RULES converts the state dict into the backbone and neck our exp describes; the same input
gives the maps compared here (max abs diff over the three backbone and three neck levels). Needs
MMDET_LITE_MMDET_SITE. Exits with status 1 if a row is above 1e-4. The heads and the end-to-end
comparison come with the RTMDet architecture.
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from tabulate import tabulate

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from mmdet_lite.convert.converter import convert_state_dict  # noqa: E402
from mmdet_lite.exp import get_exp  # noqa: E402
from mmdet_lite.models.backbones.cspnext import CSPNeXt  # noqa: E402
from mmdet_lite.models.necks.cspnext_pafpn import CSPNeXtPAFPN  # noqa: E402

from conftest import mmdet_site, run_mmdet  # noqa: E402

NAMES = [f"rtmdet_{s}_8xb32-300e_coco" for s in ("tiny", "s", "m", "l", "x")]
SCRIPT = REPO_ROOT / "tests/reference/mmdet_cspnext.py"


def our_model(exp):
    backbone, neck = dict(exp.backbone), dict(exp.neck)
    backbone.pop("name"), neck.pop("name")
    model = torch.nn.Module()
    model.backbone = CSPNeXt(**backbone)
    model.neck = CSPNeXtPAFPN(model.backbone.out_channels, **neck)
    return model.eval()


def check(name, size, folder):
    config = Path(mmdet_site()) / "mmdet/.mim/configs/rtmdet" / f"{name}.py"
    tag = f"{name}_{size}"
    run_mmdet(SCRIPT, folder, config, tag, size, size)
    exp = get_exp(str(REPO_ROOT / "exps/rtmdet" / f"{name}.py"))
    model = our_model(exp)
    source = {k: v.numpy() for k, v in torch.load(folder / f"{tag}.pth", weights_only=True).items()}
    state, report = convert_state_dict(source, model, exp.convert_rules, source=tag, origin="mmdet")
    model.load_state_dict(state, strict=False)
    ref = np.load(folder / f"{tag}.npz")
    with torch.no_grad():
        feats = model.backbone(torch.from_numpy(ref["x"]))
        outs = model.neck(feats)
    back = max(float(np.abs(f.numpy() - ref[f"backbone_{i}"]).max()) for i, f in enumerate(feats))
    neck = max(float(np.abs(f.numpy() - ref[f"neck_{i}"]).max()) for i, f in enumerate(outs))
    return [name, size, len(source), len(report.unused) + len(report.missing), f"{back:.2e}",
            f"{neck:.2e}", "ok" if max(back, neck) <= 1e-4 else "FAIL"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="320,640")
    parser.add_argument("names", nargs="*", default=NAMES)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names:
            for size in (int(s) for s in args.sizes.split(",")):
                rows.append(check(name, size, Path(tmp)))
                print(rows[-1], flush=True)
    print(tabulate(rows, headers=["config", "size", "keys", "unaccounted", "backbone max diff",
                                  "neck max diff", "result"], tablefmt="github"))
    return 1 if any(r[-1] != "ok" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

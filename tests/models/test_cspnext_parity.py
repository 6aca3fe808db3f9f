"""CSPNeXt + CSPNeXtPAFPN against mmdet 3.3.0's (tiny, s, SSCMA-nano shapes), converted by the
RTMDet rule table."""
import numpy as np
import pytest
import torch

from mmdet_lite.convert.converter import convert_state_dict
from mmdet_lite.convert.rtmdet_rules import RTMDET_RULES
from mmdet_lite.models.backbones.cspnext import CSPNeXt, SPPBottleneck
from mmdet_lite.models.necks.cspnext_pafpn import CSPNeXtPAFPN

from conftest import REPO_ROOT, run_mmdet

SCRIPT = REPO_ROOT / "tests/reference/mmdet_cspnext.py"
VARIANTS = {"tiny": (0.167, 0.375, "silu", 96), "s": (0.33, 0.5, "silu", 128),
            "nano": (0.33, 0.25, "relu", 64)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("cspnext")
    run_mmdet(SCRIPT, out)
    return out


def build(deepen, widen, act, neck_out):
    model = torch.nn.Module()
    model.backbone = CSPNeXt(deepen_factor=deepen, widen_factor=widen, act=act)
    model.neck = CSPNeXtPAFPN(model.backbone.out_channels, neck_out,
                              num_csp_blocks=max(round(3 * deepen), 1), act=act)
    return model.eval()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_cspnext_pafpn_matches_mmdet(reference, name):
    model = build(*VARIANTS[name])
    source = torch.load(reference / f"{name}.pth", weights_only=True)
    arrays = {k: v.numpy() for k, v in source.items()}
    state, report = convert_state_dict(arrays, model, RTMDET_RULES, source=f"{name}.pth",
                                       origin="mmdet")
    assert not report.unused and not report.missing
    model.load_state_dict(state, strict=False)
    ref = np.load(reference / f"{name}.npz")
    with torch.no_grad():
        feats = model.backbone(torch.from_numpy(ref["x"]))
        outs = model.neck(feats)
    assert [f.shape[1] for f in feats] == model.backbone.out_channels
    for prefix, got in (("backbone", feats), ("neck", outs)):
        for i, tensor in enumerate(got):
            diff = np.abs(tensor.numpy() - ref[f"{prefix}_{i}"]).max()
            assert diff <= 1e-4, f"{name} {prefix} level {i}: max abs diff {diff}"


def test_chained_pools_equal_spp():
    torch.manual_seed(0)
    spp = SPPBottleneck(16, 16).eval()
    sppf = SPPBottleneck(16, 16, chained=True).eval()
    sppf.load_state_dict(spp.state_dict())
    x = torch.randn(2, 16, 13, 11)
    with torch.no_grad():
        assert torch.equal(spp(x), sppf(x))

"""Numerical parity of LCNet + LCPAN / CSPPAN with PaddleDetection, through the weight converter."""
import pytest
import torch

from mmdet_lite.convert.converter import convert_state_dict
from mmdet_lite.convert.pdparams import load_pdparams
from mmdet_lite.convert.picodet_rules import PICODET_RULES
from mmdet_lite.models.backbones.lcnet import LCNet
from mmdet_lite.models.necks.csp_pan import CSPPAN
from mmdet_lite.models.necks.lcpan import LCPAN

from backbone_neck_parity import BackboneNeck, errors_against_paddle, run_references
from conftest import PADDLE_CONFIGS, REPO_ROOT

REFERENCE = REPO_ROOT / "tests/reference/paddle_backbone_neck.py"
INPUT_HW = (128, 128)
TOLERANCE = 1e-4

# Config -> (LCNet kwargs, neck class, neck kwargs), as the configs under picodet/ set them.
CASES = {
    "picodet_s_416_coco_lcnet": (dict(scale=0.75), LCPAN, dict(out_channels=96)),
    "picodet_l_640_coco_lcnet": (dict(scale=2.0), LCPAN, dict(out_channels=160)),
    "picodet_s_416_coco_npu": (dict(scale=0.75, act="relu6"), CSPPAN,
                               dict(out_channels=96, num_csp_blocks=1, act="relu6")),
}
# LCNet channels of feature maps 2..5 per scale used by the configs (xs, s, m, l), read off ppdet.
LCNET_CHANNELS = {
    0.35: [24, 48, 88, 176],
    0.75: [48, 96, 192, 384],
    1.5: [96, 192, 384, 768],
    2.0: [128, 256, 512, 1024],
}


def _backbone_neck(backbone_kwargs, neck_cls, neck_kwargs):
    """The backbone and neck of a PicoDet, named as in the detector (``backbone.*``, ``neck.*``)."""
    backbone = LCNet(**backbone_kwargs)
    return BackboneNeck(backbone, neck_cls(backbone.out_channels, **neck_kwargs))


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """Run the Paddle reference once per config, two at a time; config name -> output folder."""
    return run_references(tmp_path_factory, REFERENCE, {
        name: (PADDLE_CONFIGS / "picodet" / f"{name}.yml", *INPUT_HW) for name in CASES})


@pytest.mark.parametrize("scale", sorted(LCNET_CHANNELS))
def test_lcnet_channels_per_scale(scale):
    model = LCNet(scale, feature_maps=(2, 3, 4, 5)).eval()
    assert model.out_channels == LCNET_CHANNELS[scale]
    with torch.no_grad():
        feats = model(torch.zeros(1, 3, 32, 64))
    assert [tuple(f.shape) for f in feats] == [
        (1, c, 32 // s, 64 // s) for c, s in zip(LCNET_CHANNELS[scale], (4, 8, 16, 32))]


def test_neck_shapes():
    for neck in (LCPAN([96, 192, 384], 96), CSPPAN([96, 192, 384], 64, act="relu6"),
                 LCPAN([96, 192, 384], 32, num_features=3, use_depthwise=False)):
        feats = [torch.zeros(2, c, 32 // 2 ** i, 48 // 2 ** i)
                 for i, c in enumerate([96, 192, 384])]
        with torch.no_grad():
            outs = neck.eval()(feats)
        channels = neck.out_channels[0]
        assert neck.out_channels == [channels] * len(outs)
        assert [tuple(o.shape) for o in outs] == [
            (2, channels, 32 // 2 ** i, 48 // 2 ** i) for i in range(len(outs))]


@pytest.mark.parametrize("name", list(CASES))
def test_backbone_and_neck_match_paddle(references, name):
    out_dir = references[name]
    backbone_kwargs, neck_cls, neck_kwargs = CASES[name]
    model = _backbone_neck(backbone_kwargs, neck_cls, neck_kwargs).eval()
    source = out_dir / "backbone_neck.pdparams"
    state_dict, report = convert_state_dict(load_pdparams(source), model, PICODET_RULES,
                                            source=source.name)
    assert not report.unused and not report.missing and not report.dropped
    model.load_state_dict(state_dict, strict=True)

    feats, necks, diffs = errors_against_paddle(model, out_dir)
    assert model.backbone.out_channels == [f.shape[1] for f in feats]
    assert model.neck.out_channels == [f.shape[1] for f in necks]
    assert len(necks) == 4
    print(f"\n{name} max abs diff: " + ", ".join(f"{k}={v:.2e}" for k, v in diffs.items()))
    assert max(diffs.values()) <= TOLERANCE, diffs

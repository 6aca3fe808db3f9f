"""SOLOv2's ResNet + FPN against PaddleDetection 2.6.0, through the weight converter.

ppdet builds the backbone and neck of the shared SOLOv2 configs (one process each,
tests/reference/paddle_solov2_backbone_neck.py): ``solov2_r50_fpn_3x_coco`` (ResNet-50 variant b,
frozen norms) and ``solov2_r50_enhance_coco`` (ResNet50-vd, DCNv2 in res3..res5 with offsets of
several pixels, trainable norms, per-stage LR) get random weights and BN statistics and run on one
128x160 image; ``solov2_r101_vd_fpn_3x_coco`` (ResNet101-vd, DCNv2) is checked by names and
shapes. Ours is built from the same merged YAML sections (``ResNet``, ``FPN``), so the test also
proves that Paddle's arguments mean the same here. The DCNv2 offset layout is checked on the bare
op against ``paddle.vision.ops.deform_conv2d``.
"""
import inspect
import json

import numpy as np
import pytest
import torch
from torchvision.ops import deform_conv2d

from mmdet_lite.convert.converter import compile_rules, convert_state_dict, map_key
from mmdet_lite.convert.pdparams import load_pdparams
from mmdet_lite.convert.solov2_rules import SOLOV2_BACKBONE_NECK_RULES
from mmdet_lite.models.backbones.resnet import ResNet
from mmdet_lite.models.layers import DeformableConvV2
from mmdet_lite.models.necks.fpn import FPN
from mmdet_lite.solver.optimizer import no_weight_decay_names

from backbone_neck_parity import BackboneNeck, errors_against_paddle, run_references
from conftest import PADDLE_CONFIGS, REPO_ROOT, run_paddle_npz

REFERENCE = REPO_ROOT / "tests/reference/paddle_solov2_backbone_neck.py"
DCN_REFERENCE = REPO_ROOT / "tests/reference/paddle_deform_conv.py"
INPUT_HW = (128, 160)
TOLERANCE = 1e-4  # of max(1, the largest magnitude of the map)
PARITY = ["solov2_r50_fpn_3x_coco", "solov2_r50_enhance_coco"]
KEYS_ONLY = ["solov2_r101_vd_fpn_3x_coco"]
# (DCN layers per stage res3..res5) of the DCN configs.
DCN_BLOCKS = {"solov2_r50_enhance_coco": 4 + 6 + 3, "solov2_r101_vd_fpn_3x_coco": 4 + 23 + 3}


def _backbone_neck(config):
    """ResNet + FPN from the merged Paddle sections, named as in the detector."""
    backbone = ResNet(**config["ResNet"])
    return BackboneNeck(backbone, FPN(backbone.out_channels, **config["FPN"],
                                      spatial_scales=[1.0 / s for s in backbone.out_strides]))


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """Run the Paddle reference once per config, in parallel; config name -> output folder."""
    return run_references(tmp_path_factory, REFERENCE, {
        name: (PADDLE_CONFIGS / "solov2" / f"{name}.yml", *(INPUT_HW if name in PARITY else ()))
        for name in PARITY + KEYS_ONLY}, workers=3)


def _config(out_dir):
    return json.loads((out_dir / "config.json").read_text())


def _converted_model(out_dir):
    model = _backbone_neck(_config(out_dir)).eval()
    source = out_dir / "backbone_neck.pdparams"
    state_dict, report = convert_state_dict(load_pdparams(source), model,
                                            SOLOV2_BACKBONE_NECK_RULES, source=source.name)
    assert not report.unused and not report.missing and not report.dropped
    model.load_state_dict(state_dict, strict=True)
    return model


@pytest.mark.parametrize("name", PARITY)
def test_backbone_and_fpn_match_paddle(references, name):
    out_dir = references[name]
    model = _converted_model(out_dir)
    feats, levels, errors = errors_against_paddle(model, out_dir, relative=True)
    assert len(feats) == 4 and len(levels) == 5
    assert model.backbone.out_channels == [f.shape[1] for f in feats] == [256, 512, 1024, 2048]
    assert model.neck.out_channels == [f.shape[1] for f in levels] == [256] * 5
    assert model.neck.out_strides == [4, 8, 16, 32, 64]
    print(f"\n{name} max error / max(1, max |ref|): "
          + ", ".join(f"{k}={v:.1e}" for k, v in errors.items()))
    assert max(errors.values()) <= TOLERANCE, errors


def test_dcn_offsets_span_several_pixels(references):
    """The enhance weights move DCN samples by pixels, so the offset layout is really exercised."""
    model = _converted_model(references["solov2_r50_enhance_coco"])
    offsets = {}
    for name, module in model.named_modules():
        if isinstance(module, DeformableConvV2):
            module.conv_offset.register_forward_hook(
                lambda mod, args, out, name=name: offsets.update({name: out[:, :18].abs()}))
    with torch.no_grad():
        model(torch.from_numpy(np.load(references["solov2_r50_enhance_coco"] / "input.npy")))
    assert len(offsets) == DCN_BLOCKS["solov2_r50_enhance_coco"]
    assert {name.split(".")[1] for name in offsets} == {"res3", "res4", "res5"}
    for name, magnitude in offsets.items():
        assert magnitude.mean() > 1.5 and (magnitude > 1).float().mean() > 0.5, name


@pytest.mark.parametrize("name", PARITY)
def test_lr_decay_and_freezing_match_paddle(references, name):
    """Per parameter: Paddle's learning rate, trainability and L2Decay(0) are ours."""
    out_dir = references[name]
    model = _backbone_neck(_config(out_dir))
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    mults = {f"backbone.{k}": v for k, v in model.backbone.param_lr_mults().items()}
    no_decay = no_weight_decay_names(model)
    rules = compile_rules(SOLOV2_BACKBONE_NECK_RULES)
    attrs = json.loads((out_dir / "param_attrs.json").read_text())
    for paddle_key, (lr, trainable, l2) in attrs.items():
        key = map_key(paddle_key, rules)
        if key in buffers:  # frozen norm: Paddle's affine is a parameter that never trains
            assert not trainable and "bn" in key, paddle_key
            continue
        assert params[key].requires_grad == trainable, paddle_key
        if trainable:
            assert mults.get(key, 1.0) == pytest.approx(lr), paddle_key
            assert (key in no_decay) == (l2 == 0.0), paddle_key
    assert len(attrs) == len(params) + sum(1 for k in buffers if k.endswith((".weight", ".bias")))


@pytest.mark.parametrize("name", PARITY + KEYS_ONLY)
def test_rules_map_every_paddle_key(references, name):
    """Every ppdet backbone / neck key lands on our key of equal shape, one to one."""
    config = _config(references[name])
    with torch.device("meta"):
        model = _backbone_neck(config)
    expected = {k: list(v.shape) for k, v in model.state_dict().items()
                if not k.endswith("num_batches_tracked")}
    paddle_keys = json.loads((references[name] / "keys.json").read_text())
    rules = compile_rules(SOLOV2_BACKBONE_NECK_RULES)
    mapped = {map_key(k, rules): shape for k, shape in paddle_keys.items()}
    assert len(mapped) == len(paddle_keys) and mapped == expected
    dcn = sum(1 for k in expected if k.endswith("conv_offset.weight"))
    assert dcn == DCN_BLOCKS.get(name, 0)


def test_constructor_defaults_match_paddle(references):
    """Where ours and ppdet's ResNet / FPN share an argument, they share its default."""
    paddle_defaults = _config(references[PARITY[0]])["defaults"]
    for cls in (ResNet, FPN):
        ours = {k: list(p.default) if isinstance(p.default, tuple) else p.default
                for k, p in inspect.signature(cls).parameters.items()
                if p.default is not inspect.Parameter.empty}
        shared = set(ours) & set(paddle_defaults[cls.__name__])
        assert len(shared) == (10 if cls is ResNet else 4)
        for key in shared:
            assert ours[key] == paddle_defaults[cls.__name__][key], (cls.__name__, key)


def test_deform_conv_layout_matches_paddle(tmp_path):
    """torchvision's deform_conv2d with our split (2 k^2 offsets as (dy, dx) pairs, k^2 mask)
    equals Paddle's deformable_conv; swapping dy and dx would not."""
    rng = np.random.RandomState(0)
    n, c, h, w, out, k, stride, padding, dilation = 2, 5, 9, 11, 4, 3, 2, 1, 1
    ho, wo = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1, \
        (w + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    arrays = dict(x=rng.randn(n, c, h, w), offset=rng.randn(n, 2 * k * k, ho, wo) * 3,
                  mask=rng.rand(n, k * k, ho, wo), weight=rng.randn(out, c, k, k),
                  bias=rng.randn(out))
    arrays = {key: value.astype(np.float32) for key, value in arrays.items()}
    expected = run_paddle_npz(DCN_REFERENCE, tmp_path, dict(
        arrays, stride_padding_dilation=np.array([stride, padding, dilation])))["out"]
    t = {key: torch.from_numpy(value) for key, value in arrays.items()}
    ours = deform_conv2d(t["x"], t["offset"], t["weight"], t["bias"], stride, padding, dilation,
                         t["mask"]).numpy()
    assert ours.shape == expected.shape == (n, out, ho, wo)
    assert np.abs(ours - expected).max() <= 1e-5 * np.abs(expected).max()
    swapped = t["offset"].view(n, k * k, 2, ho, wo).flip(2).reshape(n, 2 * k * k, ho, wo)
    wrong = deform_conv2d(t["x"], swapped, t["weight"], t["bias"], stride, padding, dilation,
                          t["mask"]).numpy()
    assert np.abs(wrong - expected).max() > 0.1 * np.abs(expected).max()

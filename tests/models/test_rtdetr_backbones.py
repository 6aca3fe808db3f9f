"""RT-DETR backbones (ResNet-vd, PP-HGNetV2): parity with HF transformers, Paddle key coverage of
the conversion rules, freezing and learning-rate multipliers.

``tests/fixtures/rtdetr/paddle_backbone_keys.json.gz`` holds the state-dict names and shapes of
PaddleDetection develop's ``ResNet`` (variant d) and ``PPHGNetV2`` as a detector saves them
(``backbone.`` prefix), dumped once from ppdet (no weights).
"""
import gzip
import json
import re

import numpy as np
import pytest
import torch
import torch.nn as nn
from transformers import HGNetV2Backbone, HGNetV2Config, RTDetrResNetBackbone, RTDetrResNetConfig

from mmdet_lite.convert.converter import compile_rules, convert_state_dict, map_key
from mmdet_lite.convert.rtdetr_rules import RTDETR_BACKBONE_RULES
from mmdet_lite.models.backbones.hgnet_v2 import HGNETV2_ARCHS, PPHGNetV2
from mmdet_lite.models.backbones.resnet import RESNET_DEPTHS, ResNet
from mmdet_lite.models.layers import FrozenBatchNorm2d
from mmdet_lite.utils.errors import UserError

from conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests/fixtures/rtdetr/paddle_backbone_keys.json.gz"
TOLERANCE = 1e-4
ALL_STAGES = (0, 1, 2, 3)
# Fixture entry -> our backbone, built with the arguments the Paddle dump used.
PADDLE_VARIANTS = {
    "resnet18_vd": lambda: ResNet(18, "d", return_idx=ALL_STAGES),
    "resnet34_vd": lambda: ResNet(34, "d", return_idx=ALL_STAGES, freeze_at=-1, freeze_norm=False),
    "resnet50_vd": lambda: ResNet(50, "d", return_idx=ALL_STAGES),
    "resnet101_vd": lambda: ResNet(101, "d", return_idx=(1, 2, 3)),
    "hgnetv2_s": lambda: PPHGNetV2("S", return_idx=ALL_STAGES),
    "hgnetv2_m": lambda: PPHGNetV2("M"),
    "hgnetv2_l": lambda: PPHGNetV2("L", return_idx=ALL_STAGES),
    "hgnetv2_x": lambda: PPHGNetV2("X"),
    "hgnetv2_h": lambda: PPHGNetV2("H"),
    "hgnetv2_l_lab": lambda: PPHGNetV2("L", use_lab=True, return_idx=ALL_STAGES),
}
# Classifier keys of the ImageNet-pretrained files, absent from the backbone.
CLASSIFIER_KEYS = {"fc.weight": [2048, 1000], "fc.bias": [1000],
                   "last_conv.weight": [2048, 2048, 1, 1]}


class Detector(nn.Module):
    """Holds a backbone under ``backbone.``, as the detector does."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone


@pytest.fixture(scope="module")
def paddle_keys():
    with gzip.open(FIXTURE, "rt") as f:
        return json.load(f)


def _shapes(model):
    return {k: list(v.shape) for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def _randomize(model, seed=0):
    """Random weights, BN statistics and affine, so that parity is not trivial."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) * 1.5 + 0.5)
            elif name.endswith("running_mean") or name.endswith(".bias"):
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.2)
            elif tensor.dim() == 4:
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            else:
                tensor.copy_(torch.rand(tensor.shape, generator=gen) * 0.6 + 0.2)


def _hf_to_ours_resnet(key):
    key = re.sub(r"^embedder\.embedder\.(\d)\.", lambda m: f"conv1.conv1_{int(m[1]) + 1}.", key)
    key = re.sub(r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.",
                 lambda m: f"res{int(m[1]) + 2}.{m[2]}.", key)
    key = re.sub(r"\.layer\.(\d)\.", lambda m: f".branch2{'abc'[int(m[1])]}.", key)
    key = re.sub(r"\.shortcut\.1\.", ".short.conv.", key)
    key = re.sub(r"\.shortcut\.", ".short.", key)
    return key.replace(".convolution.", ".conv.").replace(".normalization.", ".bn.")


def _hf_to_ours_hgnet(key):
    key = re.sub(r"^embedder\.", "stem.", key)
    key = re.sub(r"^encoder\.stages\.", "stages.", key)
    key = key.replace(".aggregation.0.", ".aggregation_squeeze_conv.")
    key = key.replace(".aggregation.1.", ".aggregation_excitation_conv.")
    return key.replace(".convolution.", ".conv.").replace(".normalization.", ".bn.")


def _hf_resnet(depth):
    block_expansion = 4 if depth >= 50 else 1
    return RTDetrResNetBackbone(RTDetrResNetConfig(
        embedding_size=64, depths=list(RESNET_DEPTHS[depth]),
        hidden_sizes=[w * block_expansion for w in (64, 128, 256, 512)],
        layer_type="bottleneck" if depth >= 50 else "basic",
        out_features=["stage1", "stage2", "stage3", "stage4"]))


def _hf_hgnet(arch):
    if arch == "L":  # HF's default configuration is PP-HGNetV2-L: an independent check of ours
        return HGNetV2Backbone(HGNetV2Config(out_features=["stage1", "stage2", "stage3", "stage4"]))
    stem, stages = HGNETV2_ARCHS[arch]
    cols = list(zip(*stages))
    return HGNetV2Backbone(HGNetV2Config(
        stem_channels=list(stem), stage_in_channels=list(cols[0]), stage_mid_channels=list(cols[1]),
        stage_out_channels=list(cols[2]), stage_num_blocks=list(cols[3]),
        stage_downsample=list(cols[4]), stage_light_block=list(cols[5]),
        stage_kernel_size=list(cols[6]), stage_numb_of_layers=list(cols[7]),
        hidden_sizes=list(cols[2]), out_features=["stage1", "stage2", "stage3", "stage4"]))


HF_CASES = {
    "r18_bn": (lambda: ResNet(18, "d", return_idx=ALL_STAGES, freeze_at=-1, freeze_norm=False),
               lambda: _hf_resnet(18), _hf_to_ours_resnet),
    "r34": (lambda: ResNet(34, "d", return_idx=ALL_STAGES), lambda: _hf_resnet(34),
            _hf_to_ours_resnet),
    "r50": (lambda: ResNet(50, "d", return_idx=ALL_STAGES), lambda: _hf_resnet(50),
            _hf_to_ours_resnet),
    "r101": (lambda: ResNet(101, "d", return_idx=ALL_STAGES), lambda: _hf_resnet(101),
             _hf_to_ours_resnet),
    "hgnetv2_l": (lambda: PPHGNetV2("L", return_idx=ALL_STAGES), lambda: _hf_hgnet("L"),
                  _hf_to_ours_hgnet),
    "hgnetv2_x_bn": (lambda: PPHGNetV2("X", return_idx=ALL_STAGES, freeze_norm=False),
                     lambda: _hf_hgnet("X"), _hf_to_ours_hgnet),
}


@pytest.mark.parametrize("case", sorted(HF_CASES))
def test_parity_with_hf(case):
    """Our features equal HF's (RT-DETR ResNet-vd / HGNetV2 backbone), same random weights."""
    torch.manual_seed(0)
    build_ours, build_hf, hf_to_ours = HF_CASES[case]
    ours, hf = build_ours().eval(), build_hf().eval()
    _randomize(ours)
    our_state = ours.state_dict()
    hf_state = {k: v for k, v in hf.state_dict().items() if not k.endswith("num_batches_tracked")}
    mapped = {hf_to_ours(k): k for k in hf_state}
    assert set(mapped) == set(_shapes(ours))
    hf.load_state_dict({hf_key: our_state[key] for key, hf_key in mapped.items()}, strict=False)
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        feats, hf_feats = ours(x), hf(x).feature_maps
    assert len(feats) == len(hf_feats) == 4
    for ours_map, hf_map, channels, stride in zip(feats, hf_feats, ours.out_channels,
                                                  ours.out_strides):
        assert tuple(ours_map.shape) == (1, channels, 128 // stride, 128 // stride)
        torch.testing.assert_close(ours_map, hf_map, rtol=0, atol=TOLERANCE)
        assert ours_map.abs().max() > 0.1


@pytest.mark.parametrize("variant", sorted(PADDLE_VARIANTS))
def test_rules_cover_paddle_keys(variant, paddle_keys):
    """Every ppdet key maps onto our key of equal shape, and every one of ours has a source."""
    with torch.device("meta"):
        model = Detector(PADDLE_VARIANTS[variant]())
    rules = compile_rules(RTDETR_BACKBONE_RULES)
    converted = {map_key(k, rules): shape for k, shape in paddle_keys[variant].items()}
    assert len(converted) == len(paddle_keys[variant])
    assert converted == _shapes(model)


@pytest.mark.parametrize("variant", ["resnet50_vd", "resnet101_vd", "hgnetv2_l", "hgnetv2_x"])
def test_convert_pretrained_names(variant, paddle_keys):
    """ImageNet-pretrained files (ppdet names without ``backbone.``, plus a classifier) convert."""
    with torch.device("meta"):
        model = Detector(PADDLE_VARIANTS[variant]())
    params = {k[len("backbone."):]: np.zeros(s, np.float32)
              for k, s in paddle_keys[variant].items()}
    params.update({k: np.zeros(s, np.float32) for k, s in CLASSIFIER_KEYS.items()})
    state_dict, report = convert_state_dict(params, model, RTDETR_BACKBONE_RULES,
                                            only_backbone=True)
    assert set(state_dict) == set(_shapes(model))
    assert sorted(report.unused) == sorted(CLASSIFIER_KEYS) and not report.missing


def test_resnet_freezing_and_lr_mults():
    model = ResNet(50, "d", freeze_at=1, lr_mult_list=(0.1, 0.2, 0.3, 0.4), freeze_norm=False)
    frozen = {n.split(".", 1)[0] for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"conv1", "res2", "res3"}
    mults = model.param_lr_mults()
    assert set(mults) == {n for n, _ in model.named_parameters()}
    assert mults["conv1.conv1_1.conv.weight"] == 1.0
    assert mults["res2.0.branch2a.bn.weight"] == 0.1 and mults["res5.2.branch2c.conv.weight"] == 0.4
    stem_only = ResNet(18, "d", freeze_at=0, freeze_stem_only=True)
    assert {n.split(".", 1)[0] for n, p in stem_only.named_parameters()
            if not p.requires_grad} == {"conv1"}
    assert all(p.requires_grad for p in ResNet(18, "d", freeze_at=-1).parameters())
    assert ResNet(18).out_channels == [64, 128, 256, 512]  # Paddle's default return_idx
    assert ResNet(18, "d", return_idx=(1, 2, 3)).out_channels == [128, 256, 512]
    assert ResNet(50, "d", return_idx=(0, 3)).out_channels == [256, 2048]
    with pytest.raises(UserError, match="depth"):
        ResNet(42)
    with pytest.raises(UserError, match="return_idx"):
        ResNet(50, "d", return_idx=(3,), num_stages=3)


def test_hgnet_freezing_and_lr_mults():
    model = PPHGNetV2("L", use_lab=True, freeze_stem_only=False, freeze_at=1,
                      lr_mult_list=(0.0, 0.1, 0.2, 0.3, 0.4))
    frozen = {".".join(n.split(".")[:2]) for n, p in model.named_parameters()
              if not p.requires_grad}
    assert frozen == {"stem.stem1", "stem.stem2a", "stem.stem2b", "stem.stem3", "stem.stem4",
                      "stages.0", "stages.1"}
    mults = model.param_lr_mults()
    assert mults["stem.stem1.conv.weight"] == 0.0
    assert mults["stages.3.blocks.0.aggregation_squeeze_conv.conv.weight"] == 0.4
    assert mults["stages.2.blocks.1.layers.0.conv2.lab.scale"] == pytest.approx(0.3 * 0.01)
    assert PPHGNetV2("X").out_channels == [512, 1024, 2048]
    assert PPHGNetV2("L", return_idx=(0,)).out_channels == [128]
    default = PPHGNetV2("L")
    assert not any(p.requires_grad for p in default.stem.parameters())
    assert all(p.requires_grad for p in default.stages.parameters())
    with pytest.raises(UserError, match="arch"):
        PPHGNetV2("Q")


def test_frozen_batch_norm():
    """Frozen norm: running statistics in training, no parameters, BatchNorm2d's state-dict keys."""
    bn = nn.BatchNorm2d(4).eval()
    _randomize(bn)
    frozen = FrozenBatchNorm2d.convert(nn.Sequential(nn.BatchNorm2d(4)))
    frozen.load_state_dict(nn.Sequential(bn).state_dict())  # num_batches_tracked is ignored
    assert isinstance(frozen[0], FrozenBatchNorm2d) and not list(frozen.parameters())
    assert set(frozen[0].state_dict()) == {"weight", "bias", "running_mean", "running_var"}
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    out = frozen.train()(x)
    torch.testing.assert_close(out, bn(x))
    out.sum().backward()
    assert x.grad is not None
    model = ResNet(18, "d", freeze_norm=True).train()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model(torch.randn(2, 3, 64, 64))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

"""RT-DETR rule table: every Paddle key of ppdet develop's RT-DETR models lands one-to-one on our
model with the same shape (Linear weights transposed).

Fixtures (names and shapes only, dumped from ppdet develop's ``DETR`` built from the configs in
``paddledet_configs/rtdetr``): ``paddle_rtdetr_keys.json.gz`` (neck + transformer, per config) and
``paddle_backbone_keys.json.gz`` (backbones).
"""
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from mmdet_lite.convert.converter import compile_rules, convert_state_dict, map_key
from mmdet_lite.convert.rtdetr_rules import RTDETR_RULES
from mmdet_lite.models.architectures.rtdetr import build_rtdetr
from mmdet_lite.models.transformers import HybridEncoder, RTDETRTransformer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rtdetr"


def _load(name):
    with gzip.open(FIXTURES / name, "rt") as f:
        return json.load(f)


PADDLE_KEYS = _load("paddle_rtdetr_keys.json.gz")
BACKBONE_KEYS = _load("paddle_backbone_keys.json.gz")


def _encoder(hidden=256, ffn=1024, expansion=1.0):
    return dict(hidden_dim=hidden, expansion=expansion,
                encoder_layer=dict(d_model=hidden, nhead=8, dim_feedforward=ffn, dropout=0.0,
                                   activation="gelu"))


_RESNET_VD = dict(name="ResNet", variant="d", return_idx=[1, 2, 3])
# config: (backbone dict, backbone fixture, encoder dict, decoder dict), from the ppdet YAMLs
CONFIGS = {
    "r18vd": (dict(_RESNET_VD, depth=18, freeze_at=-1, freeze_norm=False), "resnet18_vd",
              _encoder(expansion=0.5), dict(num_decoder_layers=3)),
    "r34vd": (dict(_RESNET_VD, depth=34, freeze_at=-1, freeze_norm=False), "resnet34_vd",
              _encoder(expansion=0.5), dict(num_decoder_layers=4)),
    "r50vd": (dict(_RESNET_VD, depth=50), "resnet50_vd", _encoder(), {}),
    "r50vd_m": (dict(_RESNET_VD, depth=50), "resnet50_vd", _encoder(expansion=0.5),
                dict(eval_idx=2)),
    "r101vd": (dict(_RESNET_VD, depth=101), "resnet101_vd", _encoder(384, 2048), {}),
    "hgnetv2_l": (dict(name="PPHGNetV2", arch="L"), "hgnetv2_l", _encoder(), {}),
    "hgnetv2_x": (dict(name="PPHGNetV2", arch="X"), "hgnetv2_x", _encoder(384, 2048), {}),
}


def _expected_shapes(model):
    """Our state-dict shapes, as Paddle stores them (nn.Linear weights transposed)."""
    linear = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    return {k: tuple(v.shape[::-1]) if k in linear else tuple(v.shape)
            for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_rules_map_whole_model_one_to_one(name):
    backbone, backbone_fixture, encoder, decoder = CONFIGS[name]
    with torch.device("meta"):
        model = build_rtdetr(80, backbone, encoder, decoder)
    expected = _expected_shapes(model)
    paddle = {**BACKBONE_KEYS[backbone_fixture], **PADDLE_KEYS[name]}
    rules = compile_rules(RTDETR_RULES)
    mapped = {}
    for paddle_key, shape in paddle.items():
        key = map_key(paddle_key, rules)
        assert key in expected, f"{name}: {paddle_key} -> {key} is not a model key"
        assert key not in mapped, f"{name}: {mapped[key]} and {paddle_key} both map to {key}"
        assert tuple(shape) == expected[key], f"{name}: {paddle_key} {shape} vs {expected[key]}"
        mapped[key] = paddle_key
    unfilled = sorted(set(expected) - set(mapped))
    assert not unfilled, f"{name}: {len(unfilled)} model keys unfilled: {unfilled[:5]}"


class _EncoderDecoder(nn.Module):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder


@pytest.mark.parametrize("name", ["r18vd", "r50vd"])
def test_converter_fills_encoder_and_decoder(name):
    """The real converter on Paddle-shaped tensors: everything filled, Linear weights transposed."""
    _, _, encoder, decoder = CONFIGS[name]
    channels = [512, 1024, 2048] if name == "r50vd" else [128, 256, 512]
    encoder_module = HybridEncoder(channels, **encoder)
    model = _EncoderDecoder(encoder_module, RTDETRTransformer(
        80, backbone_feat_channels=encoder_module.out_channels, **decoder))
    rng = np.random.default_rng(0)
    paddle = {k: rng.standard_normal(s, dtype=np.float32) if "in_proj" in k
              else np.zeros(s, np.float32) for k, s in PADDLE_KEYS[name].items()}
    state, report = convert_state_dict(paddle, model, RTDETR_RULES)
    assert not report.missing and not report.unused and not report.dropped
    model.load_state_dict(state)
    in_proj = "transformer.decoder.layers.0.self_attn.in_proj_weight"
    assert torch.equal(model.decoder.layers[0].self_attn.in_proj.weight,
                       torch.from_numpy(paddle[in_proj]).T)
    assert "decoder.layers.0.self_attn.in_proj.weight" in report.transposed
    assert "encoder.encoder.0.layers.0.linear1.weight" in report.transposed

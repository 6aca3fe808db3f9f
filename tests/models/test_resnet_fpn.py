"""ResNet variants and DCNv2 stages, the DeformableConvV2 layer and the FPN neck, on their own.

Their numerical parity with PaddleDetection is in test_solov2_backbone_parity.py (SOLOv2) and
test_rtdetr_backbones.py (RT-DETR's ResNet-vd).
"""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet_lite.models.backbones import BACKBONES
from mmdet_lite.models.backbones.resnet import ResNet
from mmdet_lite.models.layers import DeformableConvV2
from mmdet_lite.models.necks.fpn import FPN
from mmdet_lite.solver.optimizer import param_groups
from mmdet_lite.utils.errors import UserError


def test_dcn_starts_as_half_a_conv_and_learns_offsets():
    """Zero offsets and mask 0.5 at start (Paddle's zero-initialised conv_offset)."""
    torch.manual_seed(0)
    dcn = DeformableConvV2(6, 4, 3, stride=2, bias=True)
    nn.init.normal_(dcn.bias)
    x = torch.randn(2, 6, 11, 9, requires_grad=True)
    out = dcn(x)
    plain = F.conv2d(x, dcn.weight, stride=2, padding=1)
    torch.testing.assert_close(out, 0.5 * plain + dcn.bias.view(1, -1, 1, 1), rtol=1e-5, atol=1e-5)
    out.square().sum().backward()
    assert dcn.conv_offset.weight.grad.abs().max() > 0 and x.grad is not None


def test_dcn_head_settings():
    """The heads' DCN (Paddle: biases at 2x LR without L2 decay) through the SGD groups."""
    dcn = DeformableConvV2(8, 8, 3, bias=True, bias_lr_mult=2.0, bias_decay=False)
    assert dcn.param_lr_mults() == {"conv_offset.weight": 1.0, "conv_offset.bias": 2.0,
                                    "bias": 2.0}
    groups = {(g["lr_mult"], g["weight_decay"]): set(g["names"])
              for g in param_groups(nn.Sequential(dcn), 1e-4)}
    assert groups == {(1.0, 1e-4): {"0.conv_offset.weight", "0.weight"},
                      (2.0, 0.0): {"0.conv_offset.bias", "0.bias"}}
    backbone_dcn = DeformableConvV2(8, 8, 3)
    assert backbone_dcn.bias is None and backbone_dcn.no_weight_decay() == []
    assert backbone_dcn.param_lr_mults() == {"conv_offset.weight": 1.0, "conv_offset.bias": 1.0}


@pytest.mark.parametrize("variant", ["a", "b", "c", "d"])
def test_resnet_variants(variant):
    """Paddle's variants: the stem, where the stride sits, the shortcut."""
    with torch.device("meta"):
        model = ResNet(50, variant)
    stem = [m.conv for m in model.conv1]
    assert [(c.kernel_size[0], c.stride[0]) for c in stem] == (
        [(7, 2)] if variant in "ab" else [(3, 2), (3, 1), (3, 1)])
    block = model.res3[0]
    assert (block.branch2a.conv.stride[0], block.branch2b.conv.stride[0]) == (
        (2, 1) if variant == "a" else (1, 2))
    if variant == "d":
        assert isinstance(block.short.pool, nn.AvgPool2d) and block.short.conv.conv.stride[0] == 1
    else:
        assert block.short.conv.stride[0] == 2


def test_resnet_dcn_stages():
    with torch.device("meta"):
        model = ResNet(50, "d", dcn_v2_stages=[1, 2, 3], freeze_norm=False)
        basic = ResNet(18, dcn_v2_stages=3)
        plain = ResNet(50, dcn_v2_stages=[-1])
    dcn = {n for n, m in model.named_modules() if isinstance(m, DeformableConvV2)}
    assert dcn == {f"res{s}.{i}.branch2b.conv" for s, count in ((3, 4), (4, 6), (5, 3))
                   for i in range(count)}
    assert isinstance(basic.res5[1].branch2b.conv, DeformableConvV2)
    assert not any(isinstance(m, DeformableConvV2) for m in plain.modules())
    assert model.dcn_v2_stages == (1, 2, 3) and plain.dcn_v2_stages == ()
    with pytest.raises(UserError, match="dcn_v2_stages"):
        ResNet(50, dcn_v2_stages=[4])
    with pytest.raises(UserError, match="norm_decay"):
        ResNet(50, norm_decay=1e-4)


def test_resnet_norms_without_decay():
    """Trainable norms carry Paddle's L2Decay(0); frozen norms have no parameters at all."""
    model = ResNet(18, freeze_norm=False, freeze_at=-1)
    norms = {f"{n}.{p}" for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)
             for p in ("weight", "bias")}
    assert len(norms) == 2 * (1 + 8 * 2 + 4) and set(model.no_weight_decay()) == norms
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert set(synced.no_weight_decay()) == norms
    assert ResNet(18).no_weight_decay() == []


def test_backbone_registry():
    model = BACKBONES.build(dict(name="ResNet", depth=18, return_idx=[2, 3]))
    assert isinstance(model, ResNet) and model.out_channels == [256, 512]
    with pytest.raises(UserError, match="backbone.name 'ResNetVd' is not known"):
        BACKBONES.build(dict(name="ResNetVd"))


def test_fpn_levels_and_init():
    torch.manual_seed(0)
    neck = FPN([64, 128, 256, 512], 32, spatial_scales=[1 / 4, 1 / 8, 1 / 16, 1 / 32])
    feats = [torch.randn(2, c, 40 // 2 ** i, 48 // 2 ** i)
             for i, c in enumerate([64, 128, 256, 512])]
    with torch.no_grad():
        outs = neck(feats)
    assert [tuple(o.shape) for o in outs] == [(2, 32, 40, 48), (2, 32, 20, 24), (2, 32, 10, 12),
                                              (2, 32, 5, 6), (2, 32, 3, 3)]
    torch.testing.assert_close(outs[4], outs[3][:, :, ::2, ::2])
    assert neck.out_channels == [32] * 5 and neck.out_strides == [4, 8, 16, 32, 64]
    for conv, fan_out in zip(neck.lateral_convs, [64, 128, 256, 512]):
        limit = math.sqrt(6.0 / (2 * fan_out))
        assert 0.9 * limit < conv.weight.abs().max() <= limit and not conv.bias.any()
    assert len(FPN([8, 16], 8, spatial_scales=[1 / 8, 1 / 16], extra_stage=0)(
        [torch.zeros(1, 8, 8, 8), torch.zeros(1, 16, 4, 4)])) == 2
    with pytest.raises(UserError, match="has_extra_convs"):
        FPN([8, 16], 8, spatial_scales=[1 / 8, 1 / 16], has_extra_convs=True)
    with pytest.raises(UserError, match="spatial_scales"):
        FPN([8, 16], 8)

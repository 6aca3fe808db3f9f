"""``fuse_model``: BatchNorm folded into the convolutions, RepVGG branches merged, same outputs."""
import torch
import torch.nn as nn

from mmdet_lite.exp import get_exp
from mmdet_lite.models.fuse import fuse_model
from mmdet_lite.models.layers import FrozenBatchNorm2d, RepVggBlock

from conftest import REPO_ROOT
from test_rtdetr_parity import randomize_


def _norms(model):
    return [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, FrozenBatchNorm2d))]


def _features(model, images):
    with torch.no_grad():
        return [f.clone() for f in model.forward_features(model.normalize(images))]


def _max_rel_diff(ours, ref):
    return max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(ours, ref))


def _build(exp_path, *opts):
    exp = get_exp(str(REPO_ROOT / exp_path))
    exp.merge(list(opts))
    torch.manual_seed(0)
    model = exp.get_model().eval()
    randomize_(model, 1)
    return model


def test_fused_rtdetr_encoder_equals_unfused():
    model = _build("exps/rtdetr/rtdetr_r18vd_6x_coco.py", "test_size", "256,256")
    assert _norms(model) and any(isinstance(m, RepVggBlock) for m in model.modules())
    images = torch.randint(0, 256, (2, 3, 256, 256), generator=torch.Generator().manual_seed(2))
    images = images.float()
    ref = _features(model, images)
    fuse_model(model)
    assert not _norms(model), "every BatchNorm is folded"
    blocks = [m for m in model.modules() if isinstance(m, RepVggBlock)]
    assert blocks and all(b.conv2 is None for b in blocks), "RepVGG branches merged"
    assert _max_rel_diff(_features(model, images), ref) < 1e-5


def test_fused_picodet_outputs_equal_unfused():
    model = _build("exps/picodet/picodet_s_416_coco_npu.py")
    images = torch.randint(0, 256, (1, 3, 320, 320), generator=torch.Generator().manual_seed(3))
    images = images.float()
    with torch.no_grad():
        ref = [t.clone() for t in model(images)]
    fuse_model(model)
    assert not _norms(model)
    with torch.no_grad():
        ours = model(images)
    assert _max_rel_diff(ours, ref) < 1e-5


def _assert_fused_backbone_equals_unfused(backbone, seed, size):
    backbone.eval()
    randomize_(backbone, seed)
    images = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        ref = [f.clone() for f in backbone(images)]
        fuse_model(backbone)
        ours = backbone(images)
    assert not _norms(backbone)
    assert _max_rel_diff(ours, ref) < 1e-5


def test_fused_hgnetv2_backbone_with_learnable_affine_equals_unfused():
    from mmdet_lite.models.backbones.hgnet_v2 import PPHGNetV2

    _assert_fused_backbone_equals_unfused(PPHGNetV2("L", use_lab=True), 4, (128, 128))


def test_fused_resnet_with_dcn_equals_unfused():
    """BatchNorm folds into the DCNv2 convs too (SOLOv2 enhance's ResNet-vd)."""
    from mmdet_lite.models.backbones.resnet import ResNet
    from mmdet_lite.models.layers import DeformableConvV2

    backbone = ResNet(18, "d", dcn_v2_stages=[1, 2, 3], freeze_norm=False)
    _assert_fused_backbone_equals_unfused(backbone, 6, (96, 128))
    assert sum(isinstance(m, DeformableConvV2) for m in backbone.modules()) == 6

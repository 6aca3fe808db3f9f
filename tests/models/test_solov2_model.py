"""The SOLOv2 detector on its own: the detector contract (eval outputs, batched post-processing,
training losses), the heads' blocks and the post-processing helpers, checked by hand.

A small ResNet-18 (variant d) and the real FPN (32 channels); the loss is a recorder.
"""
import math

import pytest
import torch
import torch.nn as nn

from mmdet_lite.models.architectures import solov2
from mmdet_lite.models.heads.solov2_blocks import ConvGN, DropBlock, coord_features
from mmdet_lite.models.heads.solov2_head import points_nms
from mmdet_lite.models.post_process.detections import Detections
from mmdet_lite.models.post_process.matrix_nms import mask_matrix_nms
from mmdet_lite.models.post_process.solov2_postprocess import masks_to_boxes, paddle_orig_size
from mmdet_lite.solver import param_groups
from mmdet_lite.utils.errors import UserError
from mmdet_lite.utils.registry import Registry

GRIDS = [12, 10, 8, 6, 4]


class RecordingLoss(nn.Module):
    """Records its arguments; returns (sum of mask logits, sum of category logits) * 1e-3."""

    def forward(self, ins_preds, ins_labels, cate_preds, cate_labels, num_ins):
        self.args = (ins_preds, ins_labels, cate_preds, cate_labels, num_ins)
        loss_ins = sum(p.sum() for p in ins_preds if p is not None) * 1e-3
        return loss_ins, cate_preds.sum() * 1e-3


@pytest.fixture
def model(monkeypatch):
    monkeypatch.setattr(solov2, "LOSSES", Registry("loss.name", {"RecordingLoss": RecordingLoss}))
    torch.manual_seed(0)
    return solov2.build_solov2(
        num_classes=3,
        backbone=dict(name="ResNet", variant="d", depth=18, return_idx=[0, 1, 2, 3],
                      freeze_norm=False),
        neck=dict(name="FPN", out_channel=32),
        head=dict(seg_feat_channels=32, stacked_convs=2, num_grids=GRIDS, kernel_out_channels=32,
                  dcn_v2_stages=[1], drop_block=True, score_threshold=0.05),
        mask_head=dict(mid_channels=32, out_channels=32, use_dcn_in_tower=True),
        mask_nms=dict(post_nms_top_n=20), loss=dict(name="RecordingLoss"))


def boost_categories(model):
    """Make many cells candidates with large masks: positive category bias, kernel bias."""
    with torch.no_grad():
        model.head.solo_cate.bias.fill_(1.0)
        model.head.solo_kernel.bias.fill_(0.5)


def test_eval_outputs_and_batched_postprocess(model):
    boost_categories(model)
    model.eval()
    images = torch.rand(2, 3, 96, 128) * 255
    with torch.no_grad():
        cate_scores, kernels, mask_feats = model(images)
    cells = sum(g * g for g in GRIDS)
    assert cate_scores.shape == (2, cells, 3) and kernels.shape == (2, cells, 32)
    assert mask_feats.shape == (2, 32, 24, 32)
    assert list(model.onnx_raw_outputs) == ["cate_scores", "kernels", "mask_feats"]
    scale_factors = torch.tensor([[0.5, 0.5], [0.8, 0.75]])
    input_sizes = torch.tensor([[96, 128], [80, 120]])
    orig_sizes = torch.tensor([[192, 256], [100, 160]])
    dets = model.postprocess((cate_scores, kernels, mask_feats), scale_factors, input_sizes,
                             orig_sizes)
    assert len(dets) == 2
    for i, det in enumerate(dets):
        assert isinstance(det, Detections) and 0 < len(det) <= 20
        assert det.masks.dtype == torch.bool and det.masks.shape[1:] == tuple(orig_sizes[i])
        assert det.labels.dtype == torch.int64 and bool((det.scores[:-1] >= det.scores[1:]).all())
        torch.testing.assert_close(det.boxes, masks_to_boxes(det.masks))
        alone = model.postprocess((cate_scores[i:i + 1], kernels[i:i + 1], mask_feats[i:i + 1]),
                                  scale_factors[i:i + 1], input_sizes[i:i + 1], orig_sizes[i:i + 1])
        assert torch.equal(alone[0].masks, det.masks) and torch.equal(alone[0].scores, det.scores)
    # Image 1's Paddle size uses the y scale for the width: 120 / 0.8 = 150 of its 160 columns.
    assert paddle_orig_size((80, 120), (0.8, 0.75)) == (100, 150)
    assert not dets[1].masks[:, :, 150:].any()


def test_onnx_postprocess_equals_postprocess_in_input_pixels(model):
    """The graph's batched post-processing in PyTorch: ``postprocess``'s instances (scale 1,
    the padded input as the original size), grouped by image, masks at the input size."""
    boost_categories(model)
    model.eval()
    images = torch.rand(3, 3, 96, 128) * 255
    with torch.no_grad():
        outputs = model(images)
        masks, scores, labels, batch = model.onnx_postprocess(outputs, images)
    sizes = torch.tensor([[96, 128]] * 3)
    dets = model.postprocess(outputs, torch.ones(3, 2), sizes, sizes)
    assert batch.tolist() == sum(([i] * len(d) for i, d in enumerate(dets)), [])
    assert all(0 < len(d) <= 20 for d in dets) and masks.shape == (len(batch), 96, 128)
    for i, det in enumerate(dets):
        assert torch.equal(det.labels, labels[batch == i])
        assert torch.equal(det.scores, scores[batch == i])
        assert torch.equal(det.masks, masks[batch == i])
    model.head.score_threshold = 1.0
    masks, scores, labels, batch = model.onnx_postprocess(outputs, images)
    assert masks.shape == (0, 96, 128) and scores.shape == labels.shape == batch.shape == (0,)


def test_postprocess_without_candidates(model):
    model.eval()
    with torch.no_grad():
        outputs = model(torch.rand(1, 3, 64, 64) * 255)
    model.head.score_threshold = 1.0
    det = model.postprocess(outputs, torch.ones(1, 2), torch.tensor([[64, 64]]),
                            torch.tensor([[64, 64]]))[0]
    assert len(det) == 0 and det.masks.shape == (0, 64, 64) and det.boxes.shape == (0, 4)


def solo_targets(batch, grids, counts, mask_hw):
    """Random targets in ``Gt2Solov2Target``'s layout (one level without targets)."""
    targets = {"fg_num": torch.tensor([3, 4][:batch])}
    for level, (grid, count) in enumerate(zip(grids, counts)):
        cells = torch.randint(0, grid * grid, (batch, count))
        targets[f"grid_order{level}"] = (cells + torch.arange(batch)[:, None] * grid * grid).int()
        targets[f"ins_label{level}"] = torch.randint(0, 2, (batch, count, *mask_hw)).to(torch.uint8)
        targets[f"cate_label{level}"] = torch.randint(0, 4, (batch, grid * grid))
    return targets


def test_training_forward_calls_the_loss_with_gathered_kernels(model):
    model.train()
    images = torch.rand(2, 3, 64, 96) * 255
    targets = solo_targets(2, GRIDS, [2, 0, 3, 1, 1], (16, 24))
    losses = model(images, targets)
    assert set(losses) == {"total_loss", "loss_ins", "loss_cate"}
    torch.testing.assert_close(losses["total_loss"], losses["loss_ins"] + losses["loss_cate"])
    losses["total_loss"].backward()
    assert model.head.kernel_convs[0].conv.weight.grad is not None
    assert model.mask_head.conv_pred.conv.weight.grad is not None
    ins_preds, ins_labels, cate_preds, cate_labels, num_ins = model.criterion.args
    assert ins_preds[1] is None and [p.shape for p in ins_preds if p is not None] == [
        (4, 16, 24), (6, 16, 24), (2, 16, 24), (2, 16, 24)]
    assert cate_preds.shape == (2 * sum(g * g for g in GRIDS), 3) and int(num_ins) == 7
    assert cate_labels.shape == (cate_preds.shape[0],) and ins_labels[2].shape == (2, 3, 16, 24)


def test_loss_inputs_gather_each_targets_kernel(model):
    """Target j of image b at level l: its cell's kernel (B, E, S, S) dotted with image b's mask
    features; category logits flattened level, image, row, column."""
    grids = [4, 3]
    kernels = [torch.randn(2, 8, g, g) for g in grids]
    cate_logits = [torch.randn(2, 3, g, g) for g in grids]
    mask_feats = torch.randn(2, 8, 5, 6)
    order = torch.tensor([[1, 15], [16 + 6, 16 + 0]])
    targets = {"grid_order0": order, "grid_order1": torch.zeros(2, 0, dtype=torch.int32),
               "ins_label0": torch.zeros(2, 2, 5, 6), "ins_label1": torch.zeros(2, 0, 5, 6),
               "cate_label0": torch.zeros(2, 16), "cate_label1": torch.zeros(2, 9),
               "fg_num": torch.tensor([1, 2])}
    ins_preds, _, cate_preds, _, num_ins = model.head.loss_inputs(cate_logits, kernels,
                                                                  mask_feats, targets)
    for b, (first, second) in enumerate(order.tolist()):
        for j, cell in enumerate((first - 16 * b, second - 16 * b)):
            kernel = kernels[0][b, :, cell // 4, cell % 4]
            expected = torch.einsum("e,ehw->hw", kernel, mask_feats[b])
            torch.testing.assert_close(ins_preds[0][2 * b + j], expected)
    assert ins_preds[1] is None and int(num_ins) == 3
    torch.testing.assert_close(cate_preds[16 + 5], cate_logits[0][1, :, 1, 1])
    torch.testing.assert_close(cate_preds[32 + 9 + 4], cate_logits[1][1, :, 1, 1])


def test_norms_and_dcn_biases_have_paddles_decay_and_lr(model):
    """GroupNorm affine: no decay; head DCN biases: 2x LR, no decay (ConvNormLayer's ParamAttr)."""
    groups = {name: (g["lr_mult"], g["weight_decay"]) for g in param_groups(model, 1e-4)
              for name in g["names"]}
    assert groups["head.kernel_convs.0.norm.weight"] == (1.0, 0.0)
    assert groups["mask_head.conv_pred.norm.bias"] == (1.0, 0.0)
    assert groups["head.kernel_convs.1.conv.bias"] == (2.0, 0.0)
    assert groups["head.cate_convs.1.conv.conv_offset.bias"] == (2.0, 0.0)
    assert groups["head.cate_convs.1.conv.conv_offset.weight"] == (1.0, 1e-4)
    assert groups["head.kernel_convs.0.conv.weight"] == (1.0, 1e-4)
    assert groups["head.solo_cate.bias"] == (1.0, 1e-4)


def test_build_errors_and_export_settings(model, monkeypatch):
    with pytest.raises(UserError, match="^head.in_channels is 64 but the neck outputs 32"):
        solov2.build_solov2_heads(3, 32, dict(in_channels=64), dict())
    with pytest.raises(UserError, match=r"^mask_head.out_channels \(128\) must equal"):
        solov2.build_solov2_heads(3, 32, dict(kernel_out_channels=64), dict(out_channels=128))
    with pytest.raises(UserError, match=r"^--opset 18: SOLOv2 with deformable convolutions "
                                        r"\(DCNv2\) exports as ONNX DeformConv, which needs"):
        model.check_onnx_export(opset=18, dynamic=False, postprocess=False)
    model.check_onnx_export(opset=19, dynamic=True, postprocess=True)
    plain = solov2.SOLOv2(nn.Identity(), nn.Identity(), *solov2.build_solov2_heads(
        3, 32, dict(kernel_out_channels=32), dict(out_channels=32)))
    with pytest.raises(UserError, match=r"^--opset 13: SOLOv2's post-processing \(Matrix NMS\)"):
        plain.check_onnx_export(opset=13, dynamic=False, postprocess=True)
    plain.check_onnx_export(opset=13, dynamic=True, postprocess=False)
    plain.check_onnx_export(opset=14, dynamic=True, postprocess=True)
    with pytest.raises(ValueError, match="needs targets"):
        model.train()(torch.zeros(1, 3, 64, 64))


def test_head_blocks():
    x = torch.zeros(2, 5, 3, 4)
    coords = coord_features(x)
    assert coords.shape == (2, 2, 3, 4)
    assert coords[0, 0, 0].tolist() == pytest.approx([-1, -1 / 3, 1 / 3, 1])  # x along columns
    assert coords[1, 1, :, 2].tolist() == [-1, 0, 1]                          # y along rows
    heat = torch.tensor([[[[0.1, 0.5, 0.5], [0.9, 0.2, 0.3]]]])
    # A cell survives where it is the max of itself and its upper, left, upper-left neighbours.
    assert torch.equal(points_nms(heat), torch.tensor([[[[0.1, 0.5, 0.5], [0.9, 0.0, 0.0]]]]))
    conv = ConvGN(4, 32, use_dcn=False)
    assert conv.conv.bias is None and conv.norm.num_groups == 32 and conv.no_weight_decay() == [
        "norm.weight", "norm.bias"]
    assert (conv(torch.randn(1, 4, 5, 5)) >= 0).all()


def test_drop_block_is_training_only():
    drop = DropBlock(block_size=3, keep_prob=0.9)
    x = torch.ones(4, 8, 32, 32)
    assert drop.eval()(x) is x
    torch.manual_seed(0)
    y = drop.train()(x)
    kept = y != 0
    scale = y[kept].unique()
    assert len(scale) == 1 and scale.item() == pytest.approx(x.numel() / kept.sum().item())
    assert 0.05 < 1 - kept.float().mean().item() < 0.15  # about 1 - keep_prob dropped
    assert DropBlock(3, 1.0).train()(x) is x


def test_matrix_nms_by_hand():
    masks = torch.zeros(4, 4, 4)
    masks[0, :2] = masks[1, :2] = 1   # the same mask twice, label 0
    masks[2, :2] = 1                  # that mask again, label 1: not decayed
    masks[3, :, :1] = 1               # IoU 2 / 10 with mask 0
    labels, scores = torch.tensor([0, 0, 1, 0]), torch.tensor([0.9, 0.8, 0.7, 0.6])
    keep, out = mask_matrix_nms(masks, labels, scores, masks.sum((1, 2)), update_threshold=0.05)
    assert keep.tolist() == [0, 2, 3, 1]
    # Mask 1: IoU 1 with mask 0 -> exp(-2); mask 3: IoU 0.2 with masks 0 and 1, divided by
    # their compensations f(0) and f(1): min(exp(-0.08), exp(-0.08) / exp(-2)) = exp(-0.08).
    assert out.tolist() == pytest.approx([0.9, 0.7, 0.6 * math.exp(-0.08), 0.8 * math.exp(-2)])
    keep, _ = mask_matrix_nms(masks, labels, scores, masks.sum((1, 2)), update_threshold=0.5)
    assert keep.tolist() == [0, 2, 3]
    keep, _ = mask_matrix_nms(masks, labels, scores, masks.sum((1, 2)), pre_nms_top_n=2,
                              post_nms_top_n=1)
    assert keep.tolist() == [0]


def test_masks_to_boxes():
    masks = torch.zeros(2, 5, 6, dtype=torch.bool)
    masks[0, 1:3, 2:5] = True
    assert masks_to_boxes(masks).tolist() == [[2, 1, 5, 3], [0, 0, 0, 0]]
    assert masks_to_boxes(torch.zeros(0, 5, 6, dtype=torch.bool)).shape == (0, 4)

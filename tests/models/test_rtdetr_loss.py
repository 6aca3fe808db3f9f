"""RT-DETR training math against HF transformers' RT-DETR (denoising groups, matcher, loss)."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers.loss.loss_for_object_detection import box_iou
from transformers.loss.loss_rt_detr import RTDetrForObjectDetectionLoss, RTDetrHungarianMatcher
from transformers.models.rt_detr.modeling_rt_detr import (
    get_contrastive_denoising_training_group as hf_denoising_group,
)

from mmdet_lite.models.assigners.hungarian_matcher import HungarianMatcher
from mmdet_lite.models.losses import detr_loss as detr_loss_module
from mmdet_lite.models.losses.detr_loss import DETRLoss
from mmdet_lite.models.transformers.denoising import get_contrastive_denoising_training_group

C, Q, L = 6, 15, 3
TERMS = {"class": "vfl", "bbox": "bbox", "giou": "giou"}
HF_CONFIG = SimpleNamespace(
    matcher_class_cost=2.0, matcher_bbox_cost=5.0, matcher_giou_cost=2.0, use_focal_loss=True,
    matcher_alpha=0.25, matcher_gamma=2.0, num_labels=C, weight_loss_vfl=1.0, weight_loss_bbox=5.0,
    weight_loss_giou=2.0, eos_coefficient=1e-4, focal_loss_alpha=0.75, focal_loss_gamma=2.0,
    auxiliary_loss=True)


def make_targets(counts, seed):
    g = torch.Generator().manual_seed(seed)
    targets = []
    for n in counts:
        cxcy = torch.rand(n, 2, generator=g) * 0.6 + 0.2
        wh = torch.rand(n, 2, generator=g) * 0.3 + 0.05
        targets.append(dict(labels=torch.randint(0, C, (n,), generator=g),
                            boxes=torch.cat([cxcy, wh], dim=1)))
    return targets


def to_hf(targets):
    return [dict(class_labels=t["labels"], boxes=t["boxes"]) for t in targets]


def make_outputs(batch, num_dn, seed, meta=None):
    """Random decoder outputs in HF's layout: (B, L, N + Q, .) with the dn queries first."""
    g = torch.Generator().manual_seed(seed)
    return dict(
        intermediate_logits=torch.randn(batch, L, num_dn + Q, C, generator=g).requires_grad_(),
        intermediate_reference_points=torch.rand(batch, L, num_dn + Q, 4, generator=g)
        .mul(0.8).add(0.1).requires_grad_(),
        enc_topk_logits=torch.randn(batch, Q, C, generator=g).requires_grad_(),
        enc_topk_bboxes=torch.rand(batch, Q, 4, generator=g).mul(0.8).add(0.1).requires_grad_(),
        denoising_meta_values=meta)


def hf_losses(outputs, targets):
    _, loss_dict, _ = RTDetrForObjectDetectionLoss(
        logits=outputs["intermediate_logits"][:, -1], labels=to_hf(targets), device="cpu",
        pred_boxes=outputs["intermediate_reference_points"][:, -1], config=HF_CONFIG,
        outputs_class=outputs["intermediate_logits"],
        outputs_coord=outputs["intermediate_reference_points"],
        enc_topk_logits=outputs["enc_topk_logits"], enc_topk_bboxes=outputs["enc_topk_bboxes"],
        denoising_meta_values=outputs["denoising_meta_values"])
    return loss_dict


def hf_as_ours(loss_dict, with_dn):
    """HF's per-layer keys summed into ppdet's names (aux = layers 0..L-2 + encoder)."""
    ours = {}
    for term, hf in TERMS.items():
        ours[f"loss_{term}"] = loss_dict[f"loss_{hf}"]
        ours[f"loss_{term}_aux"] = sum(loss_dict[f"loss_{hf}_aux_{i}"] for i in range(L))
        if with_dn:
            ours[f"loss_{term}_dn"] = loss_dict[f"loss_{hf}_dn_{L - 1}"]
            ours[f"loss_{term}_aux_dn"] = sum(loss_dict[f"loss_{hf}_dn_{i}"] for i in range(L - 1))
    return ours


def dn_group(targets, seed, **kwargs):
    torch.manual_seed(seed)
    embed = nn.Embedding(C + 1, 8, padding_idx=C)
    return get_contrastive_denoising_training_group(targets, C, Q, embed, num_denoising=10,
                                                    **kwargs)


@pytest.mark.parametrize("counts", [(3, 0, 5), (1, 1, 12)])
def test_denoising_matches_hf(counts):
    targets = make_targets(counts, seed=1)
    embed = nn.Embedding(C + 1, 16, padding_idx=C)
    torch.manual_seed(7)
    ref = hf_denoising_group(to_hf(targets), C, Q, embed, num_denoising_queries=20)
    torch.manual_seed(7)
    ours_global = get_contrastive_denoising_training_group(targets, C, Q, embed, num_denoising=20)
    ours_gen = get_contrastive_denoising_training_group(
        targets, C, Q, embed, num_denoising=20, generator=torch.Generator().manual_seed(7))
    for ours in (ours_global, ours_gen):
        torch.testing.assert_close(ours[0], ref[0], rtol=0, atol=0)
        torch.testing.assert_close(ours[1], ref[1], rtol=0, atol=0)
        assert ours[2].dtype == torch.bool
        assert torch.equal(ours[2], torch.isinf(ref[2]))  # HF: additive -inf = blocked
        assert ours[3]["dn_num_group"] == ref[3]["dn_num_group"]
        assert ours[3]["dn_num_split"] == ref[3]["dn_num_split"]
        for a, b in zip(ours[3]["dn_positive_idx"], ref[3]["dn_positive_idx"]):
            assert torch.equal(a, b)


def test_denoising_structure_and_paddle_embedding():
    targets = make_targets((2, 3), seed=2)
    hf_style = nn.Embedding(C + 1, 8, padding_idx=C)
    paddle_style = nn.Embedding(C, 8)
    paddle_style.weight.data.copy_(hf_style.weight.data[:C])
    out_hf = get_contrastive_denoising_training_group(
        targets, C, Q, hf_style, generator=torch.Generator().manual_seed(3))
    out_pd = get_contrastive_denoising_training_group(
        targets, C, Q, paddle_style, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out_pd[0], out_hf[0], rtol=0, atol=0)
    out_weight = get_contrastive_denoising_training_group(  # weight tensor, HF's target keys
        to_hf(targets), C, Q, paddle_style.weight, generator=torch.Generator().manual_seed(3))
    for a, b in zip(out_weight[:3], out_pd[:3]):
        assert torch.equal(a, b)
    mask, meta = out_pd[2], out_pd[3]
    group, num_dn = 6, meta["dn_num_split"][0]
    assert meta["dn_num_group"] == 100 // 3 and num_dn == group * meta["dn_num_group"]
    assert mask.shape == (num_dn + Q, num_dn + Q)
    assert mask[num_dn:, :num_dn].all() and not mask[:, num_dn:].any()
    for g in range(meta["dn_num_group"]):
        rows = mask[g * group:(g + 1) * group, :num_dn]
        assert not rows[:, g * group:(g + 1) * group].any()
        assert rows.sum() == group * (num_dn - group)
    assert torch.equal(meta["dn_positive_idx"][0][:4], torch.tensor([0, 1, 6, 7]))
    # corners of positives move by less than half the box size, of negatives by more
    gt = torch.cat([targets[0]["boxes"], torch.zeros(1, 4)]).repeat(2 * 33, 1)  # padded to 3
    noised = _xyxy(out_pd[1][0].sigmoid())
    moved, half = (noised - _xyxy(gt)).abs(), (0.5 * gt[:, 2:]).repeat(1, 2)
    positive, negative = meta["dn_positive_idx"][0], meta["dn_positive_idx"][0] + 3
    assert (moved[positive] <= half[positive] + 1e-4).all()
    unclipped = (noised[negative] > 1e-3) & (noised[negative] < 1 - 1e-3)  # not clipped to
    unclipped &= (noised[negative, 2:] - noised[negative, :2] > 1e-3).repeat(1, 2)  # [0,1] or w>0
    assert unclipped.float().mean() > 0.5
    assert (moved[negative] >= half[negative] - 1e-4)[unclipped].all()
    assert dn_group(make_targets((0, 0), seed=0), 0) == (None, None, None, None)
    assert dn_group(targets, 0, label_noise_ratio=0.5)[3] is not None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matcher_matches_hf_with_ties(seed):
    counts = (4, 0, 7)
    targets = make_targets(counts, seed)
    targets[2]["labels"][1] = targets[2]["labels"][0]  # duplicated GT: tied columns
    targets[2]["boxes"][1] = targets[2]["boxes"][0]
    outputs = make_outputs(len(counts), 0, seed)
    logits = outputs["enc_topk_logits"].detach().clone()
    boxes = outputs["enc_topk_bboxes"].detach().clone()
    logits[:, 5], boxes[:, 5] = logits[:, 2], boxes[:, 2]  # duplicated queries: tied rows
    ours = HungarianMatcher()(logits, boxes, targets)
    ref = RTDetrHungarianMatcher(HF_CONFIG)(dict(logits=logits, pred_boxes=boxes), to_hf(targets))
    for (qi, gi), (qr, gr) in zip(ours, ref):
        assert torch.equal(qi, qr) and torch.equal(gi, gr)
    assert [len(q) for q, _ in ours] == list(counts)
    empty = HungarianMatcher()(logits, boxes, make_targets((0, 0, 0), seed))
    assert all(len(q) == 0 and len(g) == 0 for q, g in empty)


def test_criterion_matches_hf():
    targets = make_targets((3, 0, 5), seed=3)
    meta = dn_group(targets, seed=4)[3]
    outputs = make_outputs(3, meta["dn_num_split"][0], seed=5, meta=meta)
    ours = DETRLoss(C)(outputs, targets)
    ref = hf_as_ours(hf_losses(outputs, targets), with_dn=True)
    assert set(ours) == set(ref) | {"total_loss"}
    for key, value in ref.items():
        torch.testing.assert_close(ours[key], value.reshape(()), rtol=1e-4, atol=1e-6, msg=key)
    torch.testing.assert_close(ours["total_loss"], sum(ref.values()), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(DETRLoss(C)(outputs, to_hf(targets))["total_loss"],
                               ours["total_loss"], rtol=0, atol=0)
    # box gradients match HF (VFL's IoU target is detached in both)
    box_keys = ("intermediate_reference_points", "enc_topk_bboxes")
    ours_grad = torch.autograd.grad(ours["total_loss"], [outputs[k] for k in box_keys])
    ref_grad = torch.autograd.grad(sum(ref.values()), [outputs[k] for k in box_keys])
    for a, b in zip(ours_grad, ref_grad):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_vfl_gradient_follows_paddle_not_hf():
    """ppdet does not detach sigmoid(x) in the VFL weight; HF does. Same value, other gradient."""
    targets = make_targets((4, 2), seed=6)
    outputs = make_outputs(2, 0, seed=7)
    logits, boxes = outputs["intermediate_logits"], outputs["intermediate_reference_points"]
    ours = DETRLoss(C, aux_loss=False)(outputs, targets)["loss_class"]
    indices = HungarianMatcher()(logits[:, -1], boxes[:, -1], targets)
    onehot = torch.zeros(2, Q, C)
    score = torch.zeros(2, Q, C)
    for b, (q, g) in enumerate(indices):
        pairs = box_iou(_xyxy(boxes[b, -1, q].detach()), _xyxy(targets[b]["boxes"][g]))[0]
        onehot[b, q, targets[b]["labels"][g]] = 1.0
        score[b, q, targets[b]["labels"][g]] = torch.diag(pairs)
    x = logits[:, -1]
    weight = 0.75 * x.sigmoid().pow(2) * (1 - onehot) + score
    ref = (F.binary_cross_entropy_with_logits(x, score, reduction="none") * weight).sum() / 6
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    grad = torch.autograd.grad(ours, logits)[0]
    torch.testing.assert_close(grad, torch.autograd.grad(ref, logits)[0], rtol=1e-4, atol=1e-7)
    hf_grad = torch.autograd.grad(hf_losses(dict(outputs, denoising_meta_values=None),
                                            targets)["loss_vfl"], logits)[0]
    assert (grad - hf_grad).abs().max() > 1e-3


def _xyxy(b):
    return torch.cat([b[:, :2] - 0.5 * b[:, 2:], b[:, :2] + 0.5 * b[:, 2:]], dim=1)


def test_batch_without_gt_is_finite_and_matches_hf():
    targets = make_targets((0, 0), seed=8)
    assert dn_group(targets, seed=0)[3] is None
    outputs = make_outputs(2, 0, seed=9)
    ours = DETRLoss(C)(outputs, targets)
    ref = hf_as_ours(hf_losses(outputs, targets), with_dn=False)
    for key, value in ours.items():
        assert torch.isfinite(value), key
    for key, value in ref.items():
        torch.testing.assert_close(ours[key], value.reshape(()), rtol=1e-4, atol=1e-6, msg=key)
    assert ours["loss_bbox"] == 0 and ours["loss_giou_aux"] == 0 and ours["loss_class_dn"] == 0
    ours["total_loss"].backward()
    assert torch.isfinite(outputs["intermediate_logits"].grad).all()


def test_autocast_bf16_finite_and_close():
    targets = make_targets((3, 2), seed=10)
    meta = dn_group(targets, seed=11)[3]
    outputs = make_outputs(2, meta["dn_num_split"][0], seed=12, meta=meta)
    ref = DETRLoss(C)(outputs, targets)
    low = {k: v.detach().bfloat16().requires_grad_() if torch.is_tensor(v) else v
           for k, v in outputs.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = DETRLoss(C)(low, targets)
    for key, value in ours.items():
        assert value.dtype == torch.float32 and torch.isfinite(value), key
    torch.testing.assert_close(ours["total_loss"], ref["total_loss"], rtol=5e-2, atol=1e-2)
    ours["total_loss"].backward()
    assert torch.isfinite(low["intermediate_logits"].grad.float()).all()


def test_num_gts_averaged_over_ranks(monkeypatch):
    """ppdet's normaliser: all-reduced GT count / world size (here a fake 2-rank sum of 4 + 8)."""
    targets = make_targets((1, 3), seed=13)
    outputs = make_outputs(2, 0, seed=14)
    single = DETRLoss(C)(outputs, targets)
    dist = detr_loss_module.dist
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "all_reduce", lambda t: t.mul_(3.0))
    multi = DETRLoss(C)(outputs, targets)
    for key in ("loss_class", "loss_bbox", "loss_giou_aux"):
        torch.testing.assert_close(multi[key], single[key] * 4.0 / 6.0, rtol=1e-5, atol=1e-7)

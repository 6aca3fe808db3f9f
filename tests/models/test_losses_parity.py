"""VarifocalLoss, GIoULoss and DistributionFocalLoss against ppdet 2.6.0; autocast; no positives."""
import numpy as np
import pytest
import torch

from mmdet_lite.models.losses import DistributionFocalLoss, GIoULoss, VarifocalLoss

from conftest import REPO_ROOT, run_paddle

SCRIPT = REPO_ROOT / "tests/reference/paddle_assigners_losses.py"
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
TOL = dict(rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    """ppdet's inputs and outputs; one Paddle run per session, shared with the assigner tests."""
    path = tmp_path_factory.getbasetemp() / "paddle_assigners_losses.npz"
    if not path.exists():
        run_paddle(SCRIPT, path)
    with np.load(path) as data:
        return {k: torch.from_numpy(v) for k, v in data.items()}


def picodet_losses():
    """The three losses configured as PicoHeadV2 configures them."""
    return (VarifocalLoss(use_sigmoid=False, iou_weighted=True, loss_weight=1.0),
            GIoULoss(loss_weight=2.5), DistributionFocalLoss(loss_weight=0.5))


def test_varifocal_matches_ppdet(ref):
    vfl = picodet_losses()[0]
    target = ref["vfl_target"]
    torch.testing.assert_close(vfl(ref["vfl_pred"], target, avg_factor=target.sum()),
                               ref["vfl_loss"].reshape(()), **TOL)
    vfl = VarifocalLoss(use_sigmoid=True, iou_weighted=False, reduction="none", loss_weight=0.7)
    torch.testing.assert_close(vfl(ref["vfl_logits"], target), ref["vfl_sigmoid_none"], **TOL)


def test_giou_matches_ppdet(ref):
    pred, target, weight = ref["giou_pred"], ref["giou_target"], ref["giou_weight"]
    giou = picodet_losses()[1]
    loss = giou(pred, target)
    torch.testing.assert_close(loss, ref["giou_none"][:, 0], **TOL)
    torch.testing.assert_close((loss * weight[:, 0]).sum(), ref["giou_weighted_sum"].reshape(()),
                               **TOL)
    torch.testing.assert_close(giou(pred, target, weight).sum(),
                               ref["giou_weighted_sum"].reshape(()), **TOL)
    mean = GIoULoss(loss_weight=2.5, reduction="mean")(pred, target, weight)
    torch.testing.assert_close(mean, ref["giou_mean"].reshape(()), **TOL)
    assert loss[:8].abs().max() < 1e-5  # identical boxes


def test_dfl_matches_ppdet(ref):
    dfl = picodet_losses()[2]
    loss = dfl(ref["dfl_pred"], ref["dfl_target"], weight=ref["dfl_weight"], avg_factor=4.0)
    torch.testing.assert_close(loss, ref["dfl_loss"].reshape(()), **TOL)
    none = DistributionFocalLoss(reduction="none")(ref["dfl_pred"], ref["dfl_target"])
    torch.testing.assert_close(none, ref["dfl_none"].reshape(-1), **TOL)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_losses_under_autocast_and_low_precision(ref, device, dtype):
    vfl, giou, dfl = picodet_losses()
    num_classes, reg_max = ref["vfl_pred"].shape[1], ref["dfl_pred"].shape[1] - 1
    feats = torch.randn(64, 8, device=device)
    layer = torch.nn.Linear(8, num_classes + 4 + 4 * (reg_max + 1)).to(device)
    target = ref["vfl_target"][:64].to(device)
    box_target = ref["giou_target"][:64].to(device)
    with torch.autocast(device, dtype=dtype):
        out = layer(feats)
        assert out.dtype == dtype
        scores = out[:, :num_classes].sigmoid()
        boxes = box_target + out[:, num_classes:num_classes + 4]
        corners = out[:, num_classes + 4:].reshape(-1, reg_max + 1)
        losses = [vfl(scores, target, avg_factor=target.sum().clamp(min=1)),
                  giou(boxes, box_target, ref["giou_weight"][:64, 0].to(device)).sum(),
                  dfl(corners, ref["dfl_target"][:256].to(device), avg_factor=4.0)]
        losses.append(vfl(ref["vfl_pred"][:64].to(device, dtype), target.to(dtype)))
    for loss in losses:
        assert loss.dtype == torch.float32 and torch.isfinite(loss).all()
    sum(losses).backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_no_positive_in_batch_gives_finite_losses():
    """All GTs padded: the head's regression inputs are empty and the assigned scores all zero."""
    vfl, giou, dfl = picodet_losses()
    scores = torch.rand(2 * 400, 5, requires_grad=True)
    target = torch.zeros(2 * 400, 5)
    avg_factor = target.sum().clamp(min=1)
    loss_vfl = vfl(scores, target, avg_factor=avg_factor)
    empty_boxes = torch.zeros(0, 4, requires_grad=True)
    loss_bbox = (giou(empty_boxes, torch.zeros(0, 4)) * torch.zeros(0)).sum() / avg_factor
    corners = torch.zeros(0, 8, requires_grad=True)
    loss_dfl = dfl(corners, torch.zeros(0), weight=torch.zeros(0), avg_factor=4.0) / avg_factor
    assert torch.isfinite(loss_vfl) and loss_vfl > 0
    assert loss_bbox.item() == 0.0 and loss_dfl.item() == 0.0
    (loss_vfl + loss_bbox + loss_dfl).backward()
    assert torch.isfinite(scores.grad).all()


def test_reduction_errors():
    with pytest.raises(ValueError, match="avg_factor"):
        VarifocalLoss(reduction="sum")(torch.rand(3, 2), torch.rand(3, 2), avg_factor=2.0)
    with pytest.raises(ValueError, match="reduction"):
        GIoULoss(reduction="avg")
    with pytest.raises(ValueError, match="differ"):
        VarifocalLoss()(torch.rand(3, 2), torch.rand(3, 3))

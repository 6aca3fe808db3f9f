"""SOLOv2Loss (dice + sigmoid focal) and its gradients against ppdet 2.6.0's SOLOv2Loss; edge
cases."""
import numpy as np
import pytest
import torch

from mmdet_lite.models.losses import SOLOv2Loss, dice_loss

from conftest import REPO_ROOT, run_paddle_npz

SCRIPT = REPO_ROOT / "tests/reference/paddle_solov2_loss.py"
GRIDS = (8, 6, 4, 3, 2)
TARGETS_PER_LEVEL = (5, 3, 0, 4, 1)  # level 2 has none: its prediction is None
NUM_CLASSES, BATCH, FEAT_HW = 4, 2, (12, 16)
RTOL = 1e-5
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def make_inputs(seed=0):
    """Gt2Solov2Target-shaped targets (padding rows empty) and random predictions, float32."""
    rng = np.random.RandomState(seed)
    arrays = dict(num_levels=np.array(len(GRIDS)), fg_num=np.array([7, 5], np.int64))
    for level, count in enumerate(TARGETS_PER_LEVEL):
        density = rng.uniform(0.05, 0.6, (BATCH, count, 1, 1))
        labels = (rng.uniform(size=(BATCH, count) + FEAT_HW) < density).astype(np.uint8)
        labels[:, count // 2 + 1:] = 0  # padding: no mask pixel, weight 0
        arrays[f"ins_label{level}"] = labels
        if count:
            arrays[f"ins_pred{level}"] = rng.normal(0, 2.5, (BATCH * count,) + FEAT_HW).astype(
                np.float32)
    cells = BATCH * sum(g * g for g in GRIDS)
    labels = rng.randint(1, NUM_CLASSES + 1, cells)
    arrays["cate_labels"] = np.where(rng.uniform(size=cells) < 0.15, labels, 0).astype(np.int64)
    arrays["cate_preds"] = rng.normal(-2.0, 1.5, (cells, NUM_CLASSES)).astype(np.float32)
    return arrays


def our_loss(arrays, dtype=torch.float32, device="cpu"):
    """Our loss on ``arrays``; the predictions on ``device``, the targets stay on the CPU."""
    preds = [torch.tensor(arrays[f"ins_pred{level}"], dtype=dtype, device=device,
                          requires_grad=True)
             if f"ins_pred{level}" in arrays else None for level in range(len(GRIDS))]
    labels = [torch.from_numpy(arrays[f"ins_label{level}"]) for level in range(len(GRIDS))]
    cate_preds = torch.tensor(arrays["cate_preds"], dtype=dtype, device=device,
                              requires_grad=True)
    losses = SOLOv2Loss()(preds, labels, cate_preds, torch.from_numpy(arrays["cate_labels"]),
                          torch.from_numpy(arrays["fg_num"]).sum())
    return losses, preds, cate_preds


def test_loss_and_gradients_match_ppdet(tmp_path):
    arrays = make_inputs()
    ref = run_paddle_npz(SCRIPT, tmp_path, arrays)
    (loss_ins, loss_cate), preds, cate_preds = our_loss(arrays)
    assert loss_ins.dtype == loss_cate.dtype == torch.float32 and loss_ins.dim() == 0
    torch.testing.assert_close(loss_ins, torch.tensor(ref["loss_ins"]).reshape(()), rtol=RTOL,
                               atol=0)
    torch.testing.assert_close(loss_cate, torch.tensor(ref["loss_cate"]).reshape(()), rtol=RTOL,
                               atol=0)
    (loss_ins + loss_cate).backward()
    grads = [(cate_preds.grad, ref["grad_cate_preds"])] + [
        (pred.grad, ref[f"grad_ins_pred{level}"]) for level, pred in enumerate(preds)
        if pred is not None]
    for ours, theirs in grads:
        theirs = torch.from_numpy(theirs)
        # relative to the tensor's largest gradient: padding rows have exactly zero gradient
        assert (ours - theirs).abs().max() <= RTOL * theirs.abs().max()
        assert torch.equal(ours == 0, theirs == 0)


def test_dice_loss_values():
    pred = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]])
    target = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    expected = [1 - 4 / 4.002, 1 - 2 / 3.002, 1.0]  # 1 - 2a / (b + c), eps 0.001 in b and c
    torch.testing.assert_close(dice_loss(pred, target), torch.tensor(expected))
    with pytest.raises(ValueError, match="differ"):
        dice_loss(pred, target[:2])


def test_no_mask_target_gives_zero_instance_loss():
    arrays = make_inputs(1)
    for level in range(len(GRIDS)):
        arrays[f"ins_label{level}"][:] = 0
    (loss_ins, loss_cate), preds, _ = our_loss(arrays)
    assert loss_ins.item() == 0.0 and torch.isfinite(loss_cate)  # ppdet: 0 / 0
    loss_ins.backward()
    assert all(p.grad is not None and not p.grad.any() for p in preds if p is not None)
    losses = SOLOv2Loss()([None] * 2, [torch.zeros(2, 0, 4, 4)] * 2, torch.zeros(6, 3),
                          torch.zeros(6, dtype=torch.int64), 0)
    # every logit 0, every target 0: alpha_t 0.75, (1 - p_t)^2 = 1/4, ce log 2; normaliser 0 + 1
    assert losses[0].item() == 0.0
    assert losses[1].item() == pytest.approx(6 * 3 * 0.75 * 0.25 * np.log(2))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_inputs_give_float32_losses(device, dtype):
    arrays = make_inputs(2)
    (loss_ins, loss_cate), _, _ = our_loss(arrays)
    with torch.autocast(device, dtype=dtype):
        (half_ins, half_cate), preds, _ = our_loss(arrays, dtype, device)
    assert half_ins.dtype == half_cate.dtype == torch.float32
    assert half_ins.device.type == half_cate.device.type == device
    torch.testing.assert_close(half_ins.cpu(), loss_ins, rtol=2e-2, atol=0)
    torch.testing.assert_close(half_cate.cpu(), loss_cate, rtol=2e-2, atol=0)
    (half_ins + half_cate).backward()
    assert preds[0].grad.dtype == dtype and torch.isfinite(preds[0].grad.float()).all()

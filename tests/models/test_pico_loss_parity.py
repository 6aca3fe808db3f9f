"""Parity of PicoDet's training losses and gradients with PaddleDetection 2.6.0, and edge cases.

The Paddle side (tests/reference/paddle_picodet_loss.py) builds ppdet's PicoDet-S with random
weights, runs one padded batch in train mode with the static (ATSS) and the dynamic (task-aligned)
assigner, and saves the weights, the losses and every parameter's gradient of the total loss. We
convert the weights, feed the same batch as 0..255 images and compare.
"""
import numpy as np
import pytest
import torch

from mmdet_lite.convert.converter import convert_state_dict
from mmdet_lite.convert.pdparams import load_pdparams
from mmdet_lite.exp.build import get_exp

from conftest import PADDLE_CONFIGS, REPO_ROOT, run_paddle

REFERENCE = REPO_ROOT / "tests/reference/paddle_picodet_loss.py"
NAME = "picodet_s_416_coco_lcnet"
LOSS_KEYS = ("loss_vfl", "loss_bbox", "loss_dfl")
LOSS_RTOL = 1e-4
# Gradients of a head cls conv, a DFL reg conv, a PicoFeat conv, a neck conv and the stem:
# max |ours - Paddle| / max |Paddle| per tensor (measured <= 7e-6).
GRAD_PARAMS = ("head.head_cls.0.weight", "head.head_reg.1.weight",
               "head.conv_feat.cls_conv_pw.2.1.conv.weight",
               "neck.top_down_blocks.0.0.pw_conv.conv.weight", "backbone.conv1.conv.weight")
GRAD_RTOL = 1e-4
# All gradients together: |ours - Paddle| / |Paddle| over the concatenation (measured <= 1.4e-6).
# Per tensor, the 1-channel convs of the align branch (followed by a train-mode BN, so their
# gradient is tiny and mostly cancels) reach 0.2 relative error at 2e-7 absolute.
GLOBAL_GRAD_RTOL = 1e-4


def build_model(exp=None):
    torch.set_num_threads(1)
    return (exp or get_exp(REPO_ROOT / "exps/picodet" / f"{NAME}.py")).get_model()


def targets_of(ref, epoch):
    return dict(gt_bboxes=torch.from_numpy(ref["gt_bboxes"]),
                gt_labels=torch.from_numpy(ref["gt_labels"]),
                pad_gt_mask=torch.from_numpy(ref["pad_gt_mask"]), epoch=epoch)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One Paddle process for both assigner phases: output folder."""
    out_dir = tmp_path_factory.mktemp("pico_loss")
    run_paddle(REFERENCE, PADDLE_CONFIGS / "picodet" / f"{NAME}.yml", out_dir)
    return out_dir


@pytest.fixture(scope="module")
def converted(reference):
    """Our model (train mode) with Paddle's weights, the reference arrays and the name report."""
    exp = get_exp(REPO_ROOT / "exps/picodet" / f"{NAME}.py")
    model = build_model(exp)
    state_dict, report = convert_state_dict(load_pdparams(reference / "model.pdparams"), model,
                                            exp.convert_rules)
    assert not report.missing and not report.unused
    model.load_state_dict(state_dict)
    return model.train(), np.load(reference / "loss.npz"), report


@pytest.mark.parametrize("phase", [0, 1], ids=["atss", "task_aligned"])
def test_losses_and_gradients_match_paddle(converted, phase):
    model, ref, report = converted
    epoch = int(ref[f"epoch{phase}"])
    assert (epoch < model.head.train_cfg["static_assigner_epoch"]) == (phase == 0)
    # The batch exercises the unclamped normalisation (Paddle clamps avg_factor only on >1 GPU).
    assert ref[f"num_pos{phase}"] > 10 and ref[f"score_sum{phase}"] > 1.0

    images = (torch.from_numpy(ref["image"]) * model.pixel_std + model.pixel_mean) * 255.0
    model.zero_grad(set_to_none=True)
    losses = model(images, targets_of(ref, epoch))
    losses["total_loss"].backward()

    assert set(losses) == {"total_loss", *LOSS_KEYS}
    for key in LOSS_KEYS:
        assert losses[key].dtype == torch.float32 and losses[key].dim() == 0
        np.testing.assert_allclose(losses[key].item(), ref[f"{key}{phase}"], rtol=LOSS_RTOL,
                                   err_msg=key)
    np.testing.assert_allclose(losses["total_loss"].item(), ref[f"loss{phase}"], rtol=LOSS_RTOL)

    params = dict(model.named_parameters())
    ours = {name: p.grad.numpy() for name, p in params.items()}
    theirs = {name: ref[f"grad{phase}/{report.sources[name]}"] for name in params}
    for name in GRAD_PARAMS:
        rel = np.abs(ours[name] - theirs[name]).max() / np.abs(theirs[name]).max()
        assert rel <= GRAD_RTOL, f"{name}: max relative gradient difference {rel:.2e}"
    diff = np.concatenate([(ours[n] - theirs[n]).ravel() for n in params])
    scale = np.concatenate([theirs[n].ravel() for n in params])
    rel = np.linalg.norm(diff) / np.linalg.norm(scale)
    assert rel <= GLOBAL_GRAD_RTOL, f"relative difference of all gradients {rel:.2e}"
    # Levels without positives get exactly zero regression gradient, as in Paddle.
    for name in params:
        if not theirs[name].any():
            assert not ours[name].any(), name


def small_batch(num_slots=2, real=((1, 1), (1, 0))):
    """Two 128x128 images; ``real[i][j]`` says whether GT slot j of image i is a real box."""
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 128, 128, generator=gen) * 255
    boxes = torch.tensor([[10.0, 12.0, 70.0, 90.0], [50.0, 40.0, 120.0, 100.0]])[:num_slots]
    mask = torch.tensor(real, dtype=torch.float32)[:, :num_slots, None]
    targets = dict(gt_bboxes=boxes.expand(2, -1, -1) * mask,
                   gt_labels=torch.tensor([[[3], [7]], [[1], [0]]])[:, :num_slots],
                   pad_gt_mask=mask, epoch=0)
    return images, targets


@pytest.mark.parametrize("num_slots, epoch", [(0, 0), (0, 500), (2, 0), (2, 500)])
def test_batch_without_gt_is_finite(num_slots, epoch):
    """No GT slot at all, or only padded slots: finite losses (avg_factor clamped to 1), zero box
    losses, finite gradients."""
    model = build_model().train()
    images, targets = small_batch(num_slots, real=((0, 0), (0, 0)))
    losses = model(images, dict(targets, epoch=epoch))
    losses["total_loss"].backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_bbox"].item() == 0.0 and losses["loss_dfl"].item() == 0.0
    assert losses["loss_vfl"].item() > 0.0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert model.head.head_cls[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_autocast_losses_are_finite(dtype):
    """Under autocast the losses stay float32, finite and close to the float32 ones; a saturated
    score (logit -30) keeps finite gradients in float16."""
    model = build_model().train()
    with torch.no_grad():
        model.head.head_cls[1].bias.fill_(-30.0)
    images, targets = small_batch()
    reference = model(images, targets)
    with torch.autocast("cpu", dtype=dtype):
        losses = model(images, targets)
    losses["total_loss"].backward()
    for key, value in losses.items():
        assert value.dtype == torch.float32 and torch.isfinite(value), key
    assert losses["total_loss"].item() == pytest.approx(reference["total_loss"].item(), rel=0.1)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_assigner_switch_and_epoch_key():
    """``epoch`` below static_assigner_epoch uses ATSS, from it on the task-aligned assigner;
    ppdet's ``epoch_id`` (what the trainer passes) is accepted too; train mode needs targets."""
    model = build_model().train()
    switch = model.head.train_cfg["static_assigner_epoch"]
    images, targets = small_batch()
    calls = []
    criterion = model.head.get_criterion()
    for assigner in (criterion.static_assigner, criterion.assigner):
        assigner.register_forward_hook(lambda m, i, o, name=type(assigner).__name__:
                                       calls.append(name))
    with torch.no_grad():
        model(images, dict(targets, epoch=switch - 1))
        model(images, dict(targets, epoch=switch))
        targets.pop("epoch")
        model(images, dict(targets, epoch_id=switch))
    assert calls == ["ATSSAssigner", "TaskAlignedAssigner", "TaskAlignedAssigner"]
    with pytest.raises(ValueError, match="targets"):
        model(images)

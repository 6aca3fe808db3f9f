"""SOLOv2 end to end on a tiny generated set: its reader (masks from the shapes' polygons,
``PadBatch``, ``Gt2Solov2Target``), the model's loss, the shared trainer and the mask evaluation.

A CPU-sized SOLOv2 (ResNet-18 variant b, 64-channel FPN and towers, 32 kernel channels) on four
128x160 training images: its loss falls while it overfits one batch, and ``tools/train.py`` trains
it, evaluates it and writes checkpoints that load back into the exp's model.
"""
import os

import torch

from mmdet_lite.data.train_loader import batch_to_device
from mmdet_lite.exp import get_exp
from mmdet_lite.utils.checkpoint import read_checkpoint

from conftest import REPO_ROOT
from training_helpers import TINY_SOLOV2, data_opts, logged_losses, train_cli

SOLOV2_EXP = REPO_ROOT / "exps/solov2/solov2_r50_fpn_1x_coco.py"
TINY = [*TINY_SOLOV2, "train_transforms.Resize.target_size", "[128,160]"]


def tiny_exp(root):
    exp = get_exp(SOLOV2_EXP)
    exp.merge([str(v) for v in [*data_opts(root, 128), *TINY]])
    return exp


def test_loss_falls_while_overfitting_one_batch(shapes4):
    torch.manual_seed(0)
    exp = tiny_exp(shapes4)
    loader = exp.get_train_loader(2, 0, seed=0)
    loader.set_epoch(0)
    batch = next(iter(loader))
    assert batch["images"].shape == (2, 3, 128, 160) and batch["fg_num"].sum() > 0
    images, targets = batch_to_device(batch, "cpu")
    model = exp.get_model().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        loss = model(images, targets)
        optimizer.zero_grad()
        loss["total_loss"].backward()
        optimizer.step()
        losses.append({k: float(v.detach()) for k, v in loss.items()})
    assert losses[0]["loss_ins"] > 0 and losses[0]["loss_cate"] > 0
    assert losses[-1]["total_loss"] < 0.6 * losses[0]["total_loss"], losses
    assert losses[-1]["loss_cate"] < losses[0]["loss_cate"]
    assert losses[-1]["loss_ins"] < losses[0]["loss_ins"]


def test_trains_evaluates_and_saves_through_the_cli(tmp_path, shapes4):
    log = train_cli(SOLOV2_EXP, tmp_path, "-b", "2", "-w", "2", opts=[
        *data_opts(shapes4, 128), *TINY, "max_epoch", 2, "print_interval", 1,
        "eval_interval", 1, "warmup.steps", 2])
    steps = logged_losses(log)
    assert [(e, i) for e, i, _ in steps] == [(1, 1), (1, 2), (2, 1), (2, 2)], log[-2000:]
    assert all(torch.isfinite(torch.tensor(v)) for _, _, v in steps)
    assert "loss_ins" in log and "loss_cate" in log and "AP50:95" in log
    save_dir = tmp_path / SOLOV2_EXP.stem
    assert {"latest_ckpt.pth", "epoch_2.pth", "bbox.json"} <= set(os.listdir(save_dir))
    ckpt = read_checkpoint(save_dir / "latest_ckpt.pth")
    assert ckpt["epoch"] == 2 and ckpt["num_classes"] == 5
    model = tiny_exp(shapes4).get_model()
    model.load_state_dict(ckpt["model"])
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())

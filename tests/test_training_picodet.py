"""Training the real PicoDet end to end on a tiny generated set, through tools/train.py.

Four 128x128 training images (shapes, 20 objects), two val images, one CPU thread per process:
the loss falls while overfitting them and the checkpoints appear; ``--resume`` from an epoch
snapshot ends bit-identical to the uninterrupted run; ``-c`` with 80-class PicoDet-S weights
initialises the 20-class VOC exp, listing the skipped classification tensors; two gloo processes
started by the launcher of ``-d 2 --device cpu`` (at 96 px) keep identical weights.
"""
import argparse
import json
import os
import re
import shutil

import torch

from mmdet_lite.core.launch import launch
from mmdet_lite.core.trainer import Trainer
from mmdet_lite.exp import get_exp
from mmdet_lite.utils.checkpoint import read_checkpoint, save_checkpoint
from mmdet_lite.utils.dist import get_rank
from mmdet_lite.utils.rng import seed_everything

from conftest import REPO_ROOT
from training_helpers import data_opts, logged_losses, train_cli

SHAPES_EXP = REPO_ROOT / "exps/picodet/picodet_xs_256_shapes.py"
VOC_EXP = REPO_ROOT / "exps/picodet/picodet_s_416_voc2012.py"
COCO_S_EXP = REPO_ROOT / "exps/picodet/picodet_s_416_coco_lcnet.py"


def test_loss_falls_while_overfitting_four_images(tmp_path, shapes4):
    # Without augmentation (train_transforms None) and at 0.08 (batch 4) the mean loss of the
    # last five steps is ~0.6x that of the first five; with it, 30 steps are too few to tell.
    log = train_cli(SHAPES_EXP, tmp_path, "-b", "4", "-w", "0", opts=[
        *data_opts(shapes4), "max_epoch", 30, "print_interval", 1, "snapshot_epoch", 15,
        "eval_interval", 0, "warmup.steps", 5, "base_lr", 0.16, "train_transforms", None])
    losses = [v for _, _, v in logged_losses(log)]
    assert len(losses) == 30, log[-2000:]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.75 * first, losses
    save_dir = tmp_path / SHAPES_EXP.stem
    assert {"latest_ckpt.pth", "best_ckpt.pth", "epoch_15.pth", "epoch_30.pth"} <= set(
        os.listdir(save_dir))
    ckpt = read_checkpoint(save_dir / "latest_ckpt.pth")
    assert ckpt["epoch"] == 30 and ckpt["iteration"] == 30 and ckpt["ema"]["step"] == 30
    assert read_checkpoint(save_dir / "epoch_15.pth")["epoch"] == 15
    assert "AP50:95" in log


def _assert_equal_states(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_from_a_snapshot_matches_the_straight_run(tmp_path, shapes4):
    opts = [*data_opts(shapes4), "max_epoch", 2, "snapshot_epoch", 1, "eval_interval", 0,
            "print_interval", 1]
    straight_log = train_cli(SHAPES_EXP, tmp_path / "a", "-b", "2", "-w", "0", opts=opts)
    snapshot = tmp_path / "a" / SHAPES_EXP.stem / "epoch_1.pth"
    resumed_log = train_cli(SHAPES_EXP, tmp_path / "b", "-b", "2", "-w", "1", "-c", snapshot,
                            "--resume", opts=opts)
    assert "resumed from" in resumed_log and "1 epochs done" in resumed_log
    # the resumed run logs exactly the straight run's epoch-2 losses
    assert logged_losses(resumed_log) == [x for x in logged_losses(straight_log) if x[0] == 2]
    a = read_checkpoint(tmp_path / "a" / SHAPES_EXP.stem / "latest_ckpt.pth")
    b = read_checkpoint(tmp_path / "b" / SHAPES_EXP.stem / "latest_ckpt.pth")
    assert a["epoch"] == b["epoch"] == 2 and a["iteration"] == b["iteration"] == 4
    _assert_equal_states(a["train_model"], b["train_model"])
    _assert_equal_states(a["model"], b["model"])
    _assert_equal_states(a["ema"]["shadow"], b["ema"]["shadow"])
    for key, state in a["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"],
                           b["optimizer"]["state"][key]["momentum_buffer"])
    assert a["best_ap"] == b["best_ap"]


def _voc_like(source, root):
    """A copy of ``source`` whose annotations have 20 categories (the 5 shapes, then 15 unused)."""
    shutil.copytree(source, root)
    for split in ("train", "val"):
        path = root / "annotations" / f"{split}.json"
        data = json.loads(path.read_text())
        data["categories"] += [dict(id=100 + k, name=f"unused{k}", supercategory="none")
                               for k in range(20 - len(data["categories"]))]
        path.write_text(json.dumps(data))
    return root


def test_transfer_from_80_class_weights_skips_the_class_head(tmp_path, shapes4):
    coco_model = get_exp(str(COCO_S_EXP)).get_model()  # 80 classes, our random init
    save_checkpoint({"model": coco_model.state_dict()}, tmp_path / "coco80.pth")
    voc_model = get_exp(str(VOC_EXP)).get_model()
    ours = voc_model.state_dict()
    differ = sorted(k for k, v in coco_model.state_dict().items() if ours[k].shape != v.shape)
    assert differ and all(k.startswith("head.head_cls") for k in differ), differ

    data = _voc_like(shapes4, tmp_path / "voc_like")
    log = train_cli(VOC_EXP, tmp_path, "-b", "2", "-w", "0", "-c", tmp_path / "coco80.pth",
                    opts=[*data_opts(data), "max_epoch", 1, "print_interval", 1])
    assert f"{len(differ)} tensors whose shapes differ were skipped" in log
    for key in differ:
        assert re.search(rf"  {re.escape(key)}: checkpoint \(80,[^)]*\) vs model \(20,", log), key
    assert f"{len(ours) - len(differ)} tensors loaded" in log
    assert "model tensors are not in the checkpoint" not in log
    assert [(e, i) for e, i, _ in logged_losses(log)] == [(1, 1), (1, 2)]
    ckpt = read_checkpoint(tmp_path / VOC_EXP.stem / "latest_ckpt.pth")
    assert ckpt["iteration"] == 2
    trained = ckpt["train_model"]
    assert trained["head.head_cls.0.weight"].shape[0] == 20
    assert all(torch.isfinite(v).all() for v in trained.values())


def _ddp_worker(exp, out_dir):
    trainer = Trainer(exp, argparse.Namespace(device="cpu", batch_size=4, workers=0))
    trainer.train()
    params = {k: v.detach() for k, v in trainer.raw_model.named_parameters()}
    torch.save(params, os.path.join(out_dir, f"rank{get_rank()}.pth"))


def test_two_cpu_processes_keep_identical_weights(tmp_path, shapes4):
    exp = get_exp(str(SHAPES_EXP))
    exp.merge([*data_opts(shapes4, size=96), "output_dir", str(tmp_path), "max_epoch", 2,
               "eval_interval", 0])
    launch(_ddp_worker, 2, "cpu", args=(exp, str(tmp_path)))
    rank0 = torch.load(tmp_path / "rank0.pth", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pth", weights_only=True)
    _assert_equal_states(rank0, rank1)
    ckpt = read_checkpoint(tmp_path / SHAPES_EXP.stem / "latest_ckpt.pth")
    assert ckpt["iteration"] == 2  # 4 images, 2 per process: one step per epoch
    seed_everything(exp.seed)  # rank 0 starts from these weights
    fresh = exp.get_model().state_dict()
    assert not torch.equal(fresh["head.head_cls.0.weight"], rank0["head.head_cls.0.weight"])

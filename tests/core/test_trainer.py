"""The shared trainer on a toy detector exp: loss, checkpoints, exact resume, -c, NaN stop, DDP,
CLI."""
import argparse
import os
import re
import subprocess
import sys

import pytest
import torch

from mmdet_lite.core.launch import launch
from mmdet_lite.core.trainer import Trainer, TrainingDiverged
from mmdet_lite.exp import get_exp
from mmdet_lite.utils.checkpoint import read_checkpoint
from mmdet_lite.utils.dist import get_rank
from mmdet_lite.utils.rng import seed_everything

from conftest import REPO_ROOT

TOY_EXP = REPO_ROOT / "tests/core/toy_exp.py"
CKPT_KEYS = {"model", "train_model", "ema", "optimizer", "scheduler", "scaler", "epoch",
             "iteration", "best_ap", "seed", "rng", "exp_name", "num_classes", "class_names"}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def toy_exp(out_dir, *opts):
    exp = get_exp(str(TOY_EXP))
    exp.merge(["output_dir", str(out_dir), *map(str, opts)])
    return exp


def train(out_dir, *opts, **flags):
    args = argparse.Namespace(**dict(dict(device="cpu"), **flags))
    trainer = Trainer(toy_exp(out_dir, *opts), args)
    trainer.train()
    return trainer


def assert_same_state(a, b, exact=True):
    assert a.keys() == b.keys()
    for key in a:
        if exact:
            assert torch.equal(a[key], b[key]), key
        else:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


def test_loss_falls_and_checkpoints_are_written(tmp_path):
    train(tmp_path, "max_epoch", 4, "snapshot_epoch", 2)
    save_dir = tmp_path / "toy_exp"
    names = sorted(os.listdir(save_dir))
    assert names == ["best_ckpt.pth", "epoch_2.pth", "epoch_4.pth", "latest_ckpt.pth",
                     "tensorboard", "train_log.txt"]
    assert os.listdir(save_dir / "tensorboard"), "no TensorBoard event file"
    log = (save_dir / "train_log.txt").read_text()
    losses = [float(v) for v in re.findall(r"total_loss: ([0-9.]+)", log)]
    assert len(losses) == 16  # 8 iterations per epoch, logged every 2
    assert sum(losses[-4:]) < 0.7 * sum(losses[:4]), losses
    assert "AP50:95" in log and "lr: " in log and "ETA: " in log

    ckpt = read_checkpoint(save_dir / "latest_ckpt.pth")  # weights_only=True
    assert set(ckpt) == CKPT_KEYS
    assert ckpt["epoch"] == 4 and ckpt["iteration"] == 32 and ckpt["exp_name"] == "toy_exp"
    assert ckpt["num_classes"] == 3 and ckpt["class_names"] == ["0", "1", "2"]
    assert ckpt["ema"]["step"] == 32
    # "model" holds the bias-corrected EMA weights, "train_model" the raw ones.
    ema = ckpt["ema"]
    scale = 1 - ema["last_decay"] ** ema["step"]
    torch.testing.assert_close(ckpt["model"]["stem.weight"], ema["shadow"]["stem.weight"] / scale)
    assert not torch.equal(ckpt["model"]["stem.weight"], ckpt["train_model"]["stem.weight"])
    best = read_checkpoint(save_dir / "best_ckpt.pth")
    assert best["best_ap"] == ckpt["best_ap"] > 0


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    trainer = train(tmp_path, "max_epoch", 1)
    latest = tmp_path / "toy_exp/latest_ckpt.pth"
    before = latest.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(Exception, match="No space left"):
        trainer.save(trainer.ema.averaged(), snapshot=False, is_best=False)
    assert latest.read_bytes() == before
    assert not [n for n in os.listdir(latest.parent) if n.endswith(".tmp")]


def test_resume_continues_exactly(tmp_path):
    straight = train(tmp_path / "a", "max_epoch", 2)
    train(tmp_path / "b", "max_epoch", 1)
    resumed = train(tmp_path / "b", "max_epoch", 2, resume=True)  # latest_ckpt.pth of run b
    assert resumed.start_epoch == 1
    a = read_checkpoint(tmp_path / "a/toy_exp/latest_ckpt.pth")
    b = read_checkpoint(tmp_path / "b/toy_exp/latest_ckpt.pth")
    assert_same_state(a["train_model"], b["train_model"])
    assert_same_state(a["model"], b["model"])
    assert_same_state(a["ema"]["shadow"], b["ema"]["shadow"])
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for key, state in a["optimizer"]["state"].items():
        other = b["optimizer"]["state"][key]
        assert torch.equal(state["momentum_buffer"], other["momentum_buffer"])
    assert a["best_ap"] == b["best_ap"]
    assert_same_state(straight.raw_model.state_dict(), resumed.raw_model.state_dict())


def test_ckpt_initialises_and_lists_skipped_tensors(tmp_path):
    train(tmp_path / "src", "max_epoch", 1)
    source = read_checkpoint(tmp_path / "src/toy_exp/latest_ckpt.pth")
    trainer = train(tmp_path / "dst", "max_epoch", 0, "num_classes", 5,
                    ckpt=str(tmp_path / "src/toy_exp/latest_ckpt.pth"))
    report = trainer.load_report
    assert sorted(k for k, _, _ in report.mismatched) == ["cls_head.bias", "cls_head.weight"]
    assert not report.missing and not report.unexpected
    own = trainer.raw_model.state_dict()
    assert torch.equal(own["stem.weight"], source["model"]["stem.weight"])  # the EMA weights
    assert own["cls_head.weight"].shape == (5, 16)
    log = (tmp_path / "dst/toy_exp/train_log.txt").read_text()
    assert "2 tensors whose shapes differ were skipped" in log
    assert "cls_head.weight: checkpoint (3, 16) vs model (5, 16)" in log


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 2/3, iteration 1/8"):
        train(tmp_path, "max_epoch", 3, "nan_epoch", 1)
    save_dir = tmp_path / "toy_exp"
    assert sorted(n for n in os.listdir(save_dir) if n.endswith(".pth") or n.endswith(".tmp")) == [
        "best_ckpt.pth", "epoch_1.pth", "latest_ckpt.pth"]
    ckpt = read_checkpoint(save_dir / "latest_ckpt.pth")
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["train_model"].values())
    assert "loss is nan at epoch 2/3" in (save_dir / "train_log.txt").read_text()


def test_gradient_clipping_bounds_the_update(tmp_path):
    seed_everything(7)
    initial = toy_exp(tmp_path).get_model().state_dict()
    opts = ("max_epoch", 1, "weight_decay", 0.0, "momentum", 0.0, "use_ema", False)
    free = train(tmp_path / "free", *opts).raw_model.state_dict()
    clipped = train(tmp_path / "clipped", *opts, "clip_grad_norm", 1e-3).raw_model.state_dict()
    def distance(state):
        return torch.cat([(state[k] - initial[k]).flatten() for k in initial
                          if k.endswith(("weight", "bias"))]).norm()

    # Plain SGD: 8 steps, each moving the weights by lr * grad, lr <= 0.1, |grad| <= 1e-3 clipped.
    assert distance(clipped) <= 8 * 0.1 * 1e-3 * 1.0001
    assert distance(free) > 10 * distance(clipped)


def _ddp_worker(exp, out_dir):
    trainer = Trainer(exp, argparse.Namespace(device="cpu", batch_size=4))
    trainer.train()
    torch.save(trainer.raw_model.state_dict(), os.path.join(out_dir, f"rank{get_rank()}.pth"))


def test_two_cpu_processes_match_one_process(tmp_path):
    opts = ("use_bn", False, "flip_prob", 0.0, "max_epoch", 1)
    launch(_ddp_worker, 2, "cpu", args=(toy_exp(tmp_path / "ddp", *opts), str(tmp_path)))
    rank0 = torch.load(tmp_path / "rank0.pth", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pth", weights_only=True)
    assert_same_state(rank0, rank1)
    single = train(tmp_path / "single", *opts, batch_size=4)
    assert_same_state(single.raw_model.state_dict(), rank0, exact=False)
    seed_everything(single.seed)  # rank 0 and the single process start from these weights
    initial = single.exp.get_model().state_dict()
    assert not torch.equal(initial["stem.weight"], rank0["stem.weight"])


def test_cli_trains_and_reports_divergence(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    cmd = [sys.executable, str(REPO_ROOT / "tools/train.py"), "-f", str(TOY_EXP), "-d", "1",
           "-b", "4", "-eb", "4", "-w", "0", "--device", "cpu", "output_dir", str(tmp_path),
           "max_epoch", "2", "nan_epoch", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "error: loss is nan at epoch 2/2, iteration 1/8" in proc.stderr
    assert read_checkpoint(tmp_path / "toy_exp/latest_ckpt.pth")["epoch"] == 1
    bad = subprocess.run(cmd[:-4] + ["no_such_key", "1"], capture_output=True, text=True, env=env,
                         timeout=300)
    assert bad.returncode == 2 and "unknown exp key 'no_such_key'" in bad.stderr

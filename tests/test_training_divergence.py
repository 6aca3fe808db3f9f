"""A diverging run through tools/train.py (PicoDet and RT-DETR on the tiny shapes set at 96 px):
it stops with one ``error:`` line naming the epoch, the iteration and the last good checkpoint,
and that checkpoint loads and holds only finite tensors, equal to the last good epoch's.

One good epoch first (and a stale ``latest_ckpt.pth.tmp``, removed at the next start); then
``--resume`` with an absurd learning rate, two ways: (a) ``base_lr 1e12`` without warm-up makes the
predictions NaN within the epoch -- caught right after the forward (PicoDet's BCE raises on them);
(b) ``base_lr 1e6`` keeps the losses finite while weights or BatchNorm's running statistics
overflow -- caught by the check of every tensor to save, before anything is written.
"""
import os
import re
import subprocess
import sys

import pytest
import torch

from mmdet_lite.utils.checkpoint import read_checkpoint

from conftest import REPO_ROOT
from training_helpers import data_opts

PICODET = REPO_ROOT / "exps/picodet/picodet_xs_256_shapes.py"
RTDETR = REPO_ROOT / "exps/rtdetr/rtdetr_r18vd_shapes.py"


def _train(exp_file, out_dir, data, *opts, batch=2):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    cmd = [sys.executable, str(REPO_ROOT / "tools/train.py"), "-f", str(exp_file),
           "--device", "cpu", "-b", str(batch), "-w", "0", "output_dir", str(out_dir),
           *data_opts(data, size=96), "print_interval", "1", "eval_interval", "0",
           "snapshot_epoch", "1", *map(str, opts)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def _assert_diverged(proc, epoch, latest, good_epoch):
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert re.match(rf"error: .* at epoch {epoch}/\d+, iteration \d+/\d+ \(global iteration \d+\): "
                    rf"training stopped; the last good checkpoint is {re.escape(str(latest))} "
                    rf"\(epoch {good_epoch}\)", last), last
    return last


def _assert_same_finite(path, reference):
    ckpt, ref = read_checkpoint(path), read_checkpoint(reference)
    assert ckpt["epoch"] == ref["epoch"]
    for part in ("model", "train_model"):
        assert ckpt[part].keys() == ref[part].keys()
        for key, value in ckpt[part].items():
            assert torch.isfinite(value).all() if value.is_floating_point() else True, key
            assert torch.equal(value, ref[part][key]), key


# What each family reports first: PicoDet's varifocal BCE raises on NaN probabilities; RT-DETR's
# matcher turns NaN costs into large ones and its sigmoid-focal losses return NaN.
FIRST_SIGN = {"picodet": r"the predictions are not finite \(NaN from [\w.]+ on; the loss raised "
                         r"RuntimeError: all elements of input should be between 0 and 1\)",
              "rtdetr": r"loss (term \w+ )?is nan"}


@pytest.mark.parametrize("family, exp_file", [("picodet", PICODET), ("rtdetr", RTDETR)],
                         ids=["picodet", "rtdetr"])
def test_a_diverging_run_stops_with_one_line_and_keeps_the_good_checkpoint(tmp_path, shapes4,
                                                                          family, exp_file):
    save_dir = tmp_path / exp_file.stem
    latest = save_dir / "latest_ckpt.pth"
    good = _train(exp_file, tmp_path, shapes4, "max_epoch", 1)
    assert good.returncode == 0, good.stderr[-3000:]
    assert read_checkpoint(save_dir / "best_ckpt.pth")["epoch"] == 1
    (save_dir / "latest_ckpt.pth.tmp").write_bytes(b"left by a killed save")

    # (a) NaN predictions within epoch 2 make the loss raise: one line, epoch 1 kept
    nan = _train(exp_file, tmp_path, shapes4, "--resume", "max_epoch", 3, "base_lr", 1e12,
                 "warmup.steps", 0, batch=1)
    line = _assert_diverged(nan, 2, latest, 1)
    assert re.match(rf"error: {FIRST_SIGN[family]} at epoch 2/3", line), line
    assert not (save_dir / "latest_ckpt.pth.tmp").exists()  # removed at start
    assert not (save_dir / "epoch_2.pth").exists()
    _assert_same_finite(latest, save_dir / "epoch_1.pth")
    _assert_same_finite(save_dir / "best_ckpt.pth", save_dir / "epoch_1.pth")

    # (b) finite losses, but weights or BatchNorm statistics overflow within an epoch (PicoDet:
    # the 3rd, its 2nd is still finite; RT-DETR's AdamW: the 2nd): no file of that epoch is written
    overflow = _train(exp_file, tmp_path, shapes4, "--resume", "max_epoch", 4, "base_lr", 1e6)
    stopped = int(re.search(r"at epoch (\d+)/4", overflow.stderr.strip().splitlines()[-1])[1])
    assert stopped == {"picodet": 3, "rtdetr": 2}[family], overflow.stderr[-3000:]
    line = _assert_diverged(overflow, stopped, latest, stopped - 1)
    assert re.match(r"error: \d+ tensors to save are not finite \([\w.]+, ", line), line
    assert not (save_dir / f"epoch_{stopped}.pth").exists()
    _assert_same_finite(latest, save_dir / f"epoch_{stopped - 1}.pth")

"""Nothing a user ran before is lost, nothing wrong passes silently (issue 15), through the real
tools: run folders, resume checks, empty schedules, a full disk during a checkpoint write,
duplicate image ids, short epochs that still print, the export's input check, check_dataset."""
import json
import os
import resource
import shutil
import subprocess
import sys

import pytest
import torch

from mmdet_lite.utils.checkpoint import read_checkpoint

from conftest import REPO_ROOT
from training_helpers import data_opts

PICODET = REPO_ROOT / "exps/picodet/picodet_xs_256_shapes.py"
RTDETR = REPO_ROOT / "exps/rtdetr/rtdetr_r18vd_shapes.py"
NAME = PICODET.stem


def _tool(tool, *args, cwd=None, file_limit=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT),
               CUDA_VISIBLE_DEVICES="")

    def limit():  # Python ignores SIGXFSZ: a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    return subprocess.run([sys.executable, str(REPO_ROOT / "tools" / tool), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=cwd,
                          preexec_fn=limit if file_limit else None)


def _train(out, data, *args, opts=()):
    return _tool("train.py", "-f", PICODET, "--device", "cpu", "-b", 2, "-w", 0, *args,
                 "output_dir", out, *data_opts(data, size=96), "eval_interval", 0,
                 "snapshot_epoch", 1, *map(str, opts))


def _error(proc):
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), proc.stderr[-2000:]
    return last


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, shapes4):
    """One finished 1-epoch run in ``out/<exp name>``."""
    out = tmp_path_factory.mktemp("runs")
    proc = _train(out, shapes4, opts=["max_epoch", 1, "print_interval", 50])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, shapes4


def test_short_epochs_print_progress_and_a_summary(first_run):
    out, _ = first_run
    log = (out / NAME / "train_log.txt").read_text()
    # 2 iterations per epoch, print_interval 50: the epoch's last iteration still prints
    assert "epoch: 1/1, iter: 2/2" in log
    assert "epoch 1/1 done in " in log and "images/s): mean total_loss " in log
    assert "AP50:95 " in log and "%" in log.split("AP50:95 ")[1].split(",")[0]


def test_a_second_run_gets_its_own_folder_and_resume_finds_the_newest(first_run, tmp_path):
    out, data = first_run
    work = tmp_path / "out"
    shutil.copytree(out, work)
    before = {p.name: p.read_bytes() for p in (work / NAME).glob("*.pth")}
    proc = _train(work, data, opts=["max_epoch", 1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "holds an earlier run" in proc.stderr and f"{NAME}_2" in proc.stderr
    assert {p.name: p.read_bytes() for p in (work / NAME).glob("*.pth")} == before
    assert read_checkpoint(work / f"{NAME}_2" / "latest_ckpt.pth")["epoch"] == 1
    # --resume alone continues the newest run, in its own folder
    os.utime(work / f"{NAME}_2" / "latest_ckpt.pth")
    proc = _train(work, data, "--resume", opts=["max_epoch", 2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_checkpoint(work / f"{NAME}_2" / "latest_ckpt.pth")["epoch"] == 2
    assert not (work / f"{NAME}_3").exists()
    assert {p.name: p.read_bytes() for p in (work / NAME).glob("*.pth")} == before
    # --exist-ok reuses the folder; -expn names it
    proc = _train(work, data, "-expn", "mine", opts=["max_epoch", 1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / "mine" / "latest_ckpt.pth").is_file()
    proc = _train(work, data, "-expn", "mine", "--exist-ok", opts=["max_epoch", 1])
    assert proc.returncode == 0 and not (work / "mine_2").exists(), proc.stderr[-3000:]


def test_resume_refuses_another_exp_and_a_finished_run(first_run):
    out, data = first_run
    latest = out / NAME / "latest_ckpt.pth"
    proc = _tool("train.py", "-f", RTDETR, "--device", "cpu", "-c", latest, "--resume",
                 "output_dir", out, *data_opts(data, size=96))
    line = _error(proc)
    assert NAME in line and RTDETR.stem in line and "--allow-other-exp" in line
    line = _error(_train(out, data, "-c", latest, "--resume", opts=["max_epoch", 1]))
    assert str(latest) in line and "1 epochs done" in line and "max_epoch is 1" in line
    line = _error(_train(out / "nowhere", data, "--resume", opts=["max_epoch", 3]))
    assert "no run of" in line and "-c" in line


@pytest.mark.parametrize("epochs", [0, -1])
def test_an_empty_schedule_is_an_error(first_run, epochs):
    out, data = first_run
    line = _error(_train(out, data, opts=["max_epoch", epochs]))
    assert f"max_epoch {epochs}" in line


def test_a_full_disk_during_a_checkpoint_write_keeps_the_previous_one(first_run, tmp_path):
    out, data = first_run
    work = tmp_path / "out"
    shutil.copytree(out, work)
    latest = work / NAME / "latest_ckpt.pth"
    before = latest.read_bytes()
    proc = _tool("train.py", "-f", PICODET, "--device", "cpu", "-b", 2, "-w", 0, "--resume",
                 "output_dir", work, *data_opts(data, size=96), "eval_interval", 0,
                 "max_epoch", 2, file_limit=256 * 1024)
    line = _error(proc)
    assert "cannot write checkpoint" in line and "intact" in line
    assert latest.read_bytes() == before
    assert torch.load(latest, weights_only=True)["epoch"] == 1
    assert not list((work / NAME).glob("*.tmp"))


def test_duplicate_image_ids_are_named(first_run, tmp_path):
    out, data = first_run
    ann = json.loads((data / "annotations/val.json").read_text())
    ann["images"][1]["id"] = ann["images"][0]["id"]
    (tmp_path / "val.json").write_text(json.dumps(ann))
    proc = _tool("eval.py", "-f", PICODET, "-c", out / NAME / "latest_ckpt.pth", "--device",
                 "cpu", "-w", 0, "output_dir", tmp_path, *data_opts(data, size=96),
                 "val_ann", tmp_path / "val.json")
    line = _error(proc)
    assert f"image id {ann['images'][0]['id']}" in line and "val.json" in line


def test_export_checks_its_image_before_writing(first_run, tmp_path):
    out, _ = first_run
    onnx = tmp_path / "m.onnx"
    proc = _tool("export_onnx.py", "-f", PICODET, "-c", out / NAME / "latest_ckpt.pth",
                 "--output-name", onnx, "--check-image", tmp_path / "missing.jpg",
                 "num_classes", 5)
    assert "missing.jpg" in _error(proc)
    assert not onnx.exists()


def test_check_dataset_lists_every_unreadable_image(shapes4, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(shapes4, data)
    opts = data_opts(data, size=96)
    proc = _tool("check_dataset.py", "-f", PICODET, "--decode", *opts)
    assert proc.returncode == 0 and "every image is readable" in proc.stdout, proc.stderr
    train = sorted((data / "train").iterdir())
    train[0].write_bytes(train[0].read_bytes()[:200])  # truncated
    train[1].unlink()
    (data / "val" / sorted(os.listdir(data / "val"))[0]).write_bytes(b"not an image")
    proc = _tool("check_dataset.py", "-f", PICODET, "--decode", *opts)
    line = _error(proc)
    assert line.startswith("error: 3 image file(s) cannot be used")
    for path, what in ((train[0], "unreadable"), (train[1], "missing")):
        assert f"{path}: {what}" in proc.stdout
    assert "not an image file" in proc.stdout

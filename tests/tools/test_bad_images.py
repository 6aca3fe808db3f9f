"""An unreadable image met inside a data-loader worker (``-w 2``) or a rank (``-d 2``): one
``error:`` line naming the file, exit code 2; ``skip_bad_images True`` trains on with a warning
and a count at the end of the epoch."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from training_helpers import data_opts

PICODET = REPO_ROOT / "exps/picodet/picodet_xs_256_shapes.py"


def _train(out, data, *args, opts=()):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT),
               CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, str(REPO_ROOT / "tools/train.py"), "-f", str(PICODET), "--device",
           "cpu", "-b", "2", *map(str, args), "output_dir", str(out), *data_opts(data, size=96),
           "eval_interval", "0", "max_epoch", "1", *map(str, opts)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def broken(tmp_path_factory, shapes4):
    data = tmp_path_factory.mktemp("broken") / "data"
    shutil.copytree(shapes4, data)
    bad = sorted((data / "train").iterdir())[1]
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return data, bad


@pytest.mark.parametrize("flags", [("-w", 2), ("-w", 1, "-d", 2)], ids=["workers", "ranks"])
def test_an_unreadable_image_in_a_worker_is_one_line(broken, tmp_path, flags):
    data, bad = broken
    proc = _train(tmp_path, data, *flags)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Caught" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: cannot decode image file {bad}: it is empty, corrupt or not an "
                      "image"], proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == errors[0]


def test_skip_bad_images_trains_on_and_counts_them(broken, tmp_path):
    data, bad = broken
    proc = _train(tmp_path, data, "-w", 2, opts=["skip_bad_images", "True"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    summary = [line for line in proc.stderr.splitlines()
               if "unreadable image(s) skipped (skip_bad_images)" in line]
    assert len(summary) == 1 and str(bad) in summary[0], proc.stderr[-3000:]
    assert "epoch 1: 1 unreadable image(s)" in summary[0]
    assert (tmp_path / PICODET.stem / "latest_ckpt.pth").is_file()


@pytest.mark.parametrize("flags", [("-w", 2), ("-w", 1, "-d", 2)], ids=["workers", "ranks"])
def test_an_unreadable_image_in_eval_is_one_line(broken, tmp_path, flags):
    from tiny_picodet import EXP_FILE, NUM_CLASSES, TSIZE, write_checkpoint

    data, _ = broken
    bad = sorted((data / "val").iterdir())[0]
    shutil.copy(data / "train" / sorted(os.listdir(data / "train"))[1], bad)
    ckpt = write_checkpoint(tmp_path / "tiny.pth")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT),
               CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, str(REPO_ROOT / "tools/eval.py"), "-f", str(EXP_FILE), "-c", str(ckpt),
           "--device", "cpu", "--tsize", str(TSIZE), *map(str, flags), "output_dir",
           str(tmp_path), *data_opts(data, size=96), "num_classes", str(NUM_CLASSES)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == \
        f"error: cannot decode image file {bad}: it is empty, corrupt or not an image"

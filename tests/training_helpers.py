"""Helpers of the training tests: the generated shapes data as exp overrides, ``tools/train.py`` in
a subprocess and the losses its log reports."""
import os
import re
import subprocess
import sys

from conftest import REPO_ROOT

SIZE = 128
LOSS = re.compile(r"epoch: (\d+)/\d+, iter: (\d+)/\d+.*?total_loss: ([0-9.]+)")


def data_opts(root, size=SIZE):
    """``KEY VALUE`` overrides pointing an exp at a ``make_shapes_dataset`` folder, ``size`` px."""
    return ["data_dir", str(root), "train_ann", "annotations/train.json", "val_ann",
            "annotations/val.json", "train_image_folder", "train", "val_image_folder", "val",
            "train_sizes", f"[{size}]", "test_size", f"{size},{size}"]


def train_cli(exp_file, out_dir, *flags, opts=()):
    """``tools/train.py`` in a subprocess (one thread); returns the train log's text."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    cmd = [sys.executable, str(REPO_ROOT / "tools/train.py"), "-f", str(exp_file),
           "--device", "cpu", *flags, "output_dir", str(out_dir), *map(str, opts)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return (out_dir / exp_file.stem / "train_log.txt").read_text()


def logged_losses(log):
    """``[(epoch, iteration, total_loss)]`` of every progress line of a train log."""
    return [(int(e), int(i), float(v)) for e, i, v in LOSS.findall(log)]


TINY_SOLOV2 = ["num_classes", 5, "backbone.depth", 18, "neck.out_channel", 64,
               "head.seg_feat_channels", 64, "head.stacked_convs", 2,
               "head.kernel_out_channels", 32, "mask_head.mid_channels", 32,
               "mask_head.out_channels", 32, "test_size", "128,160"]
"""``KEY VALUE`` overrides that make ``solov2_r50_fpn_1x_coco`` a CPU-sized SOLOv2 for the 5
shapes classes (ResNet-18 variant b, 64-channel FPN and towers, 32 kernel channels)."""

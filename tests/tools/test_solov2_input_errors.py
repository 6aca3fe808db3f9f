"""Bad mask data for a SOLOv2 exp through ``tools/train.py`` and ``tools/eval.py`` with loader
workers on: one line on stderr naming the annotation file (or the image), exit code 2.

The annotation checks (``mmdet_lite.data.mask_annotations``) run in the main process before any
worker starts; an unreadable image fails inside a loader worker (and, for ``eval -d 2``, inside a
rank process) and still reaches the user as one line.
"""
import copy
import json

import numpy as np
import pytest

from mmdet_lite.data.voc import voc_to_coco

from conftest import start_tool
from tiny_solov2 import EXP_FILE, detecting_checkpoint, tiny_opts
from training_helpers import data_opts


def _broken(data, case):
    """A copy of the COCO dict ``data`` with the fault ``case`` in its first annotation."""
    data = copy.deepcopy(data)
    ann = data["annotations"][0]
    polygon = ann["segmentation"][0]
    if case == "two_points":
        ann["segmentation"] = [polygon[:4]]
    elif case == "odd_coords":
        ann["segmentation"] = [polygon[:6] + polygon[:1]]
    elif case == "outside":
        ann["segmentation"] = [[v + 5000 if i % 2 == 0 else v for i, v in enumerate(polygon)]]
    elif case == "box_only":
        for a in data["annotations"]:
            del a["segmentation"]
    elif case == "corrupt_image":
        data["images"][0]["file_name"] = "corrupt.jpg"
    return data


CASES = ("two_points", "odd_coords", "outside", "box_only", "corrupt_image")
EXPECTED = {
    "two_points": "has a polygon of 2 points (at least 3 are needed)",
    "odd_coords": "has a polygon with an odd number of coordinates (7)",
    "outside": "has polygons lying wholly outside the",
    "box_only": "has no instance masks (no annotation has a 'segmentation'",
}


def _write_voc(root):
    """A two-image VOC2007 folder of 5 classes converted by ``voc_to_coco`` (boxes only)."""
    import cv2

    voc = root / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True)
    for stem in ("000005", "000007"):
        cv2.imwrite(str(voc / "JPEGImages" / f"{stem}.jpg"), np.full((64, 80, 3), 128, np.uint8))
        (voc / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>80</width><height>64"
            "</height><depth>3</depth></size><object><name>dog</name><difficult>0</difficult>"
            "<bndbox><xmin>10</xmin><ymin>12</ymin><xmax>50</xmax><ymax>40</ymax></bndbox>"
            "</object></annotation>")
    (voc / "ImageSets/Main/train.txt").write_text("000005\n000007\n")
    (voc / "label_list.txt").write_text("cat\ndog\nhorse\nsheep\ncow\n")
    voc_to_coco(voc, "train", voc / "voc_train.json", label_list="label_list.txt")
    return voc


@pytest.fixture(scope="module")
def runs(shapes4, tmp_path_factory):
    """Every failing command started at once (their start-ups overlap), then collected."""
    tmp = tmp_path_factory.mktemp("solov2_errors")
    ckpt = detecting_checkpoint(tmp / "tiny_solov2.pth")
    for split in ("train", "val"):
        (shapes4 / split / "corrupt.jpg").write_bytes(b"not an image")
        data = json.loads((shapes4 / "annotations" / f"{split}.json").read_text())
        for case in CASES:
            (shapes4 / "annotations" / f"{split}_{case}.json").write_text(
                json.dumps(_broken(data, case)))
    voc = _write_voc(tmp)
    train = ["-b", "2", "-w", "2", "--device", "cpu"]
    evaluate = ["-c", ckpt, "-b", "2", "-w", "2", "--device", "cpu"]
    common = tiny_opts(*data_opts(shapes4), "output_dir", tmp / "out", "max_epoch", 1,
                       "train_transforms.Resize.target_size", "[128,160]")
    commands = {}
    for case in CASES:
        commands[("train", case)] = ("train.py", "-f", EXP_FILE, *train, *common,
                                     "train_ann", f"annotations/train_{case}.json")
        commands[("eval", case)] = ("eval.py", "-f", EXP_FILE, *evaluate, *common,
                                    "val_ann", f"annotations/val_{case}.json")
    commands[("eval -d 2", "corrupt_image")] = ("eval.py", "-f", EXP_FILE, *evaluate, "-d", "2",
                                                *common, "val_ann",
                                                "annotations/val_corrupt_image.json")
    voc_opts = tiny_opts("data_dir", voc, "train_ann", "voc_train.json",
                         "val_ann", "voc_train.json", "train_image_folder", "JPEGImages",
                         "val_image_folder", "JPEGImages", "output_dir", tmp / "out")
    commands[("train", "voc")] = ("train.py", "-f", EXP_FILE, *train, *voc_opts)
    commands[("eval", "voc")] = ("eval.py", "-f", EXP_FILE, *evaluate, *voc_opts)
    procs = {key: start_tool(*cmd, cwd=tmp) for key, cmd in commands.items()}
    results = {}
    for key, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        results[key] = (proc.returncode, err)
    return shapes4, voc, results


def _one_line_error(result):
    code, err = result
    assert code == 2, err[-3000:]
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


@pytest.mark.parametrize("tool", ["train", "eval"])
@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_bad_masks_are_named_in_one_line(runs, tool, case):
    root, _, results = runs
    line = _one_line_error(results[(tool, case)])
    split = "train" if tool == "train" else "val"
    assert f"annotation file {root / 'annotations' / f'{split}_{case}.json'}" in line, line
    assert EXPECTED[case] in line, line
    if case != "box_only":
        assert ": annotation 1 (image 1) has " in line, line


@pytest.mark.parametrize("tool", ["train", "eval"])
def test_voc_data_for_a_mask_exp_names_the_annotation_file(runs, tool):
    _, voc, results = runs
    line = _one_line_error(results[(tool, "voc")])
    assert line.startswith(f"error: annotation file {voc / 'voc_train.json'} has no instance "
                           "masks"), line
    assert "tools/voc2coco.py" in line and "solov2_r50_fpn_1x_coco needs polygon or RLE" in line


@pytest.mark.parametrize("tool", ["train", "eval", "eval -d 2"])
def test_an_error_inside_a_loader_worker_is_one_line(runs, tool):
    root, _, results = runs
    split = "train" if tool == "train" else "val"
    line = _one_line_error(results[(tool, "corrupt_image")])
    assert line == (f"error: cannot decode image file {root / split / 'corrupt.jpg'}: it is "
                    "empty, corrupt or not an image"), line

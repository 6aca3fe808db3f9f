"""The generated shapes dataset: deterministic, valid COCO, non-contiguous category ids."""
import hashlib
import json
import os
import runpy

import numpy as np
from pycocotools import mask as mask_utils

from mmdet_lite.data.image_io import read_image
from mmdet_lite.data.synthetic import make_shapes_dataset

from conftest import REPO_ROOT


def _digest(root):
    h = hashlib.sha1()
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            h.update(name.encode())
            h.update((open(os.path.join(dirpath, name), "rb").read()))
    return h.hexdigest()


def test_deterministic_and_valid(tmp_path):
    a = make_shapes_dataset(tmp_path / "a", num_train=8, num_val=6, seed=7)
    make_shapes_dataset(tmp_path / "b", num_train=8, num_val=6, seed=7)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    c = make_shapes_dataset(tmp_path / "c", num_train=3, num_val=6, seed=7)
    assert c["val"] == a["val"]  # val does not depend on num_train
    assert make_shapes_dataset(tmp_path / "d", 8, 6, seed=8)["train"] != a["train"]

    for split in ("train", "val"):
        data = json.loads((tmp_path / "a/annotations" / f"{split}.json").read_text())
        assert data == a[split]
        assert [c["id"] for c in data["categories"]] == [1, 3, 7, 10, 15]
        for img in data["images"]:
            image = read_image(tmp_path / "a" / split / img["file_name"])
            assert image.shape == (img["height"], img["width"], 3)
            assert 240 <= img["height"] <= 480 and 320 <= img["width"] <= 640
        for ann in data["annotations"]:
            img = data["images"][ann["image_id"] - 1]
            poly = np.asarray(ann["segmentation"][0]).reshape(-1, 2)
            x, y, w, h = ann["bbox"]
            assert ann["iscrowd"] == 0 and w > 0 and h > 0
            assert np.allclose([x, y, x + w, y + h], [*poly.min(0), *poly.max(0)], atol=0.02)
            assert 0 <= x and x + w <= img["width"] and 0 <= y and y + h <= img["height"]
            rle = mask_utils.frPyObjects(ann["segmentation"], img["height"], img["width"])
            assert ann["area"] == float(mask_utils.area(mask_utils.merge(rle))) > 0


def test_some_images_empty(tmp_path):
    data = make_shapes_dataset(tmp_path, num_train=40, num_val=0, seed=0)["train"]
    with_objects = {a["image_id"] for a in data["annotations"]}
    assert 0 < len(data["images"]) - len(with_objects) < 20
    assert {a["category_id"] for a in data["annotations"]} == {1, 3, 7, 10, 15}


def test_cli(tmp_path, capsys):
    tool = runpy.run_path(str(REPO_ROOT / "tools/make_shapes_dataset.py"))
    tool["main"](["--out", str(tmp_path / "s"), "--num-train", "2", "--num-val", "1"])
    assert "train: 2 images" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "s")) == ["annotations", "train", "val"]
    assert len(os.listdir(tmp_path / "s/train")) == 2

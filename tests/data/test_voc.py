"""VOC: read a VOCdevkit folder directly, and convert it to COCO JSON (library and CLI)."""
import json
import os
import runpy

import cv2
import numpy as np
import pytest
import torch

from mmdet_lite.data.coco import COCODataset
from mmdet_lite.data.voc import VOC_CLASSES, VOCDataset, voc_to_coco
from mmdet_lite.utils.errors import UserError

from conftest import REPO_ROOT

_XML = """<annotation><folder>VOC2007</folder><filename>{stem}.jpg</filename>
<size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objects}</annotation>"""
_OBJ = """<object><name>{name}</name><pose>Left</pose><truncated>0</truncated>
<difficult>{difficult}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>
<ymax>{y2}</ymax></bndbox></object>"""
_IMAGES = {
    "000005": (60, 80, [("chair", 0, 10, 12, 30, 40), ("person", 1, 5, 6, 80, 60)]),
    "000007": (50, 40, [("tvmonitor", 0, 1, 2, 20, 30)]),
}


@pytest.fixture()
def voc_root(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    for stem, (h, w, objs) in _IMAGES.items():
        cv2.imwrite(str(root / "JPEGImages" / f"{stem}.jpg"), np.full((h, w, 3), 128, np.uint8))
        objects = "".join(_OBJ.format(name=n, difficult=d, x1=x1, y1=y1, x2=x2, y2=y2)
                          for n, d, x1, y1, x2, y2 in objs)
        (root / "Annotations" / f"{stem}.xml").write_text(_XML.format(stem=stem, w=w, h=h,
                                                                      objects=objects))
    (root / "ImageSets/Main/test.txt").write_text("000005\n000007\n")
    return root


def test_read_vocdevkit(voc_root):
    ds = VOCDataset(voc_root, "test")
    assert len(ds) == 2 and ds.num_classes == 20 and ds.class_names == list(VOC_CLASSES)
    assert ds.class_ids == list(range(1, 21))
    first = ds[0]
    assert first["orig_size"].tolist() == [60, 80] and first["image"].shape == (3, 60, 80)
    assert first["labels"].tolist() == [VOC_CLASSES.index("chair"), VOC_CLASSES.index("person")]
    # Paddle's VOCDataSet clips x2/y2 to w-1/h-1; difficult objects are kept and flagged
    assert first["boxes"].tolist() == [[10, 12, 30, 40], [5, 6, 79, 59]]
    assert first["difficult"].tolist() == [False, True]
    assert first["is_crowd"].tolist() == [False, False]
    second = ds[1]
    assert second["boxes"].tolist() == [[1, 2, 20, 30]]
    assert second["labels"].tolist() == [VOC_CLASSES.index("tvmonitor")]
    assert second["difficult"].dtype == torch.bool


def test_convert_to_coco(voc_root, tmp_path):
    out = tmp_path / "ann" / "voc_test.json"
    voc_to_coco(voc_root, "test", out)
    data = json.loads(out.read_text())
    assert [c["id"] for c in data["categories"]] == list(range(1, 21))
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in data["images"]] == [
        (1, "000005.jpg", 80, 60), (2, "000007.jpg", 40, 50)]
    anns = data["annotations"]
    assert [a["bbox"] for a in anns] == [[10, 12, 20, 28], [5, 6, 75, 54], [1, 2, 19, 28]]
    assert [a["category_id"] for a in anns] == [9, 15, 20]
    assert [a["iscrowd"] for a in anns] == [0, 0, 0]
    assert [a["ignore"] for a in anns] == [0, 1, 0] and [a["difficult"] for a in anns] == [0, 1, 0]
    assert [a["area"] for a in anns] == [560, 4050, 532]
    ds = COCODataset(voc_root, str(out), "JPEGImages")
    assert ds.num_classes == 20
    assert ds[0]["boxes"].tolist() == [[10, 12, 30, 40]]  # the ignore (difficult) one is skipped
    assert ds[1]["labels"].tolist() == [19]


def test_label_list_and_errors(voc_root):
    (voc_root / "label_list.txt").write_text("person\nchair\ntvmonitor\n")
    ds = VOCDataset(voc_root, "test", label_list="label_list.txt")
    assert ds.class_names == ["person", "chair", "tvmonitor"] and ds[0]["labels"].tolist() == [1, 0]
    (voc_root / "label_list.txt").write_text("person\n")
    with pytest.raises(UserError, match=r"000005\.xml: class 'chair' is not in the label list"):
        VOCDataset(voc_root, "test", label_list="label_list.txt")
    with pytest.raises(UserError, match=r"ImageSets/Main/val\.txt"):
        VOCDataset(voc_root, "val")
    (voc_root / "Annotations/000007.xml").write_text("<annotation><size>")
    with pytest.raises(UserError, match=r"000007\.xml is not valid XML"):
        VOCDataset(voc_root, "test")
    os.remove(voc_root / "JPEGImages/000005.jpg")
    with pytest.raises(UserError, match=r"image file not found: .*000005\.jpg"):
        voc_to_coco(voc_root, "test", voc_root / "out.json")


def test_cli(voc_root, tmp_path, capsys):
    tool = runpy.run_path(str(REPO_ROOT / "tools/voc2coco.py"))
    out = tmp_path / "cli.json"
    tool["main"](["--voc-root", str(voc_root), "--split", "test", "--out", str(out)])
    assert "2 images, 3 objects, 20 categories" in capsys.readouterr().out
    assert len(json.loads(out.read_text())["annotations"]) == 3
    with pytest.raises(SystemExit) as exc:
        tool["main"](["--voc-root", str(tmp_path / "nowhere"), "--split", "test",
                      "--out", str(out)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("error: VOC split file not found")

"""COCODataset: category mapping, items, crowd/ignore handling and user errors."""
import json

import numpy as np
import pytest
import torch

from mmdet_lite.data.coco import COCODataset
from mmdet_lite.data.geometric import TestTransform
from mmdet_lite.utils.errors import UserError

pytest_plugins = ["sample_files"]  # fixtures: shapes_dir


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


def test_non_contiguous_category_mapping(shapes_dir):
    ds = COCODataset(shapes_dir, "annotations/val.json", "val")
    assert ds.class_ids == [1, 3, 7, 10, 15]
    assert ds.class_names == ["circle", "square", "triangle", "hexagon", "star"]
    assert ds.num_classes == 5
    data = json.loads((shapes_dir / "annotations/val.json").read_text())
    assert len(ds) == len(data["images"])
    assert ds.image_ids == sorted(i["id"] for i in data["images"])
    empty = 0
    for index, image_id in enumerate(ds.image_ids):
        anns = [a for a in data["annotations"] if a["image_id"] == image_id]
        rec = ds.get_annotation(index)
        assert rec["image_id"] == image_id
        assert rec["labels"].tolist() == [ds.class_ids.index(a["category_id"]) for a in anns]
        expected = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
        np.testing.assert_allclose(rec["boxes"], np.float32(expected).reshape(-1, 4), atol=1e-3)
        empty += not anns
    assert empty > 0, "images without annotations must be kept"


def test_item_with_test_transform(shapes_dir):
    ds = COCODataset(str(shapes_dir), "annotations/val.json", "val",
                     transform=TestTransform((320, 416)))
    item = ds[0]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 320, 416)
    h, w = item["orig_size"].tolist()
    assert item["orig_size"].dtype == torch.int64
    assert item["scale_factor"].dtype == torch.float32
    assert item["scale_factor"].tolist() == pytest.approx([320 / h, 416 / w])
    assert isinstance(item["image_id"], int)
    assert item["boxes"].dtype == torch.float32 and item["labels"].dtype == torch.int64
    assert item["is_crowd"].dtype == torch.bool and len(item["is_crowd"]) == len(item["labels"])
    raw = COCODataset(shapes_dir, "annotations/val.json", "val")[0]
    assert raw["image"].shape == (3, h, w) and raw["scale_factor"].tolist() == [1.0, 1.0]


def _tiny(tmp_path, anns, categories=None):
    (tmp_path / "img").mkdir(exist_ok=True)
    import cv2

    cv2.imwrite(str(tmp_path / "img/a.png"), np.zeros((20, 30, 3), np.uint8))
    data = dict(images=[dict(id=5, file_name="a.png", width=30, height=20)], annotations=anns,
                categories=categories or [dict(id=2, name="x"), dict(id=9, name="y")])
    return _write(tmp_path / "ann.json", data)


def test_crowd_kept_ignore_and_degenerate_skipped(tmp_path):
    anns = [dict(id=1, image_id=5, category_id=9, bbox=[1, 2, 3, 4], area=12, iscrowd=1),
            dict(id=2, image_id=5, category_id=2, bbox=[1.00049, 2, 3, 4], area=12, iscrowd=0),
            dict(id=3, image_id=5, category_id=2, bbox=[1, 2, 3, 4], area=12, iscrowd=0, ignore=1),
            dict(id=4, image_id=5, category_id=2, bbox=[1, 2, 0, 4], area=0, iscrowd=0),
            dict(id=5, image_id=5, category_id=2, bbox=[0, 0, 0, 0], area=0, iscrowd=0)]
    ds = COCODataset(tmp_path, _tiny(tmp_path, anns).name, "img")
    item = ds[0]
    assert item["labels"].tolist() == [1, 0]
    assert item["is_crowd"].tolist() == [True, False]
    assert item["boxes"].tolist() == [[1, 2, 4, 6], [pytest.approx(1.0), 2, pytest.approx(4.0), 6]]


def test_absolute_paths(tmp_path, shapes_dir):
    ds = COCODataset(None, shapes_dir / "annotations/val.json", shapes_dir / "val")
    assert len(ds) == 10 and ds[1]["image"].dim() == 3


def test_num_classes_mismatch(shapes_dir):
    ds = COCODataset(shapes_dir, "annotations/val.json", "val")
    ds.check_num_classes(5)
    with pytest.raises(UserError) as err:
        ds.check_num_classes(80)
    assert str(err.value) == ("annotations/val.json has 5 categories but num_classes is 80; "
                              "pass num_classes 5")


def test_missing_annotation_file(tmp_path):
    with pytest.raises(UserError, match="annotation file not found: .*missing.json"):
        COCODataset(tmp_path, "missing.json", "img")


def test_invalid_json(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="bad.json is not valid JSON"):
        COCODataset(tmp_path, "bad.json", "img")
    _write(tmp_path / "list.json", [1, 2])
    with pytest.raises(UserError, match="list.json"):
        COCODataset(tmp_path, "list.json", "img")
    _write(tmp_path / "nocat.json", dict(images=[]))
    with pytest.raises(UserError, match="nocat.json has no 'categories'"):
        COCODataset(tmp_path, "nocat.json", "img")


def test_unknown_category_id(tmp_path):
    ann = _tiny(tmp_path, [dict(id=1, image_id=5, category_id=4, bbox=[1, 2, 3, 4], area=12)])
    with pytest.raises(UserError, match="category_id 4"):
        COCODataset(tmp_path, ann.name, "img")


def test_missing_image_named(tmp_path):
    ann = _tiny(tmp_path, [])
    (tmp_path / "img/a.png").unlink()
    with pytest.raises(UserError, match=r"image file not found: .*img/a\.png"):
        COCODataset(tmp_path, ann.name, "img")

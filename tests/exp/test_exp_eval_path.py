"""The exp's evaluation builders on a tiny COCO file, with the data fields given as overrides."""
import json

import cv2
import numpy as np
import pytest

from mmdet_lite.exp import PicoDetExp
from mmdet_lite.utils.errors import UserError


@pytest.fixture
def tiny_coco(tmp_path):
    (tmp_path / "imgs").mkdir()
    images = []
    for i, (h, w) in enumerate([(60, 80), (90, 50), (40, 40)], start=1):
        cv2.imwrite(str(tmp_path / f"imgs/{i}.png"), np.full((h, w, 3), 10 * i, np.uint8))
        images.append(dict(id=i, file_name=f"{i}.png", height=h, width=w))
    anns = [dict(id=1, image_id=1, category_id=7, bbox=[1, 2, 10, 20], area=200, iscrowd=0)]
    cats = [dict(id=9, name="b"), dict(id=7, name="a")]
    (tmp_path / "val.json").write_text(json.dumps(dict(images=images, annotations=anns,
                                                       categories=cats)))
    return tmp_path


def test_overrides_reach_the_eval_loader_and_evaluator(tiny_coco):
    exp = PicoDetExp()
    exp.merge(["data_dir", str(tiny_coco), "val_ann", "val.json", "val_image_folder", "imgs",
               "num_classes", "2", "test_size", "64,96"])
    batches = list(exp.get_eval_loader(batch_size=2, num_workers=0))
    assert [b["image_ids"] for b in batches] == [[1, 2], [3]]
    first = batches[0]
    assert first["images"].shape == (2, 3, 64, 96)
    np.testing.assert_allclose(first["scale_factors"].numpy(),
                               [[64 / 60, 96 / 80], [64 / 90, 96 / 50]], rtol=1e-6)
    evaluator = exp.get_evaluator(2, 0)
    assert evaluator.dataset.class_names == ["a", "b"]  # categories sorted by id

    shard = list(exp.get_eval_loader(batch_size=8, num_workers=0, rank=1, world_size=2))
    assert shard[0]["image_ids"] == [2]


def test_num_classes_must_match_the_annotation_file(tiny_coco):
    exp = PicoDetExp()
    exp.merge(["data_dir", str(tiny_coco), "val_ann", "val.json", "val_image_folder", "imgs"])
    with pytest.raises(UserError, match="num_classes"):
        exp.get_eval_dataset()

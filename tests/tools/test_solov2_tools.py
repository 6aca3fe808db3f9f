"""SOLOv2 through the shared tools: ``Predictor`` masks in original pixels, ``tools/demo.py``
drawing them, ``tools/eval.py`` writing and scoring ``bbox.json`` and ``segm.json``.

The tiny SOLOv2 of ``tiny_solov2`` (random weights, category conv biased so that it detects) on
the ``shapes4`` images (polygon annotations).
"""
import json

import numpy as np
import pytest

from mmdet_lite.core.predictor import Predictor
from mmdet_lite.data.image_io import read_image
from mmdet_lite.data.synthetic import SHAPE_CATEGORIES

from conftest import start_tool
from tiny_solov2 import EXP_FILE, detecting_checkpoint, tiny_opts


def _data_opts(root):
    return ["data_dir", str(root), "val_ann", "annotations/val.json", "val_image_folder", "val"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return detecting_checkpoint(tmp_path_factory.mktemp("solov2_tools") / "tiny_solov2.pth")


def _enclosing_boxes(masks):
    rows, cols = masks.any(2), masks.any(1)
    return np.stack([cols.argmax(1), rows.argmax(1),
                     cols.shape[1] - cols[:, ::-1].argmax(1),
                     rows.shape[1] - rows[:, ::-1].argmax(1)], 1).astype(np.float32)


def test_predictor_masks_are_bool_in_original_pixels_and_follow_conf(shapes4, ckpt):
    path = shapes4 / "val" / "000001.jpg"
    image = read_image(path)
    opts = tiny_opts(*_data_opts(shapes4))
    predictor = Predictor(str(EXP_FILE), ckpt, conf=0.0, **dict(zip(opts[0::2], opts[1::2])))
    result = predictor(str(path))
    assert len(result) > 2 and result.names == [name for _, name in SHAPE_CATEGORIES]
    assert result.masks.dtype == np.bool_ and result.masks.shape == (len(result), *image.shape[:2])
    assert image.shape[:2] != (128, 160)  # not the network input's size
    assert result.masks.any((1, 2)).all()
    np.testing.assert_array_equal(result.boxes, _enclosing_boxes(result.masks))
    from_array = predictor(image)
    np.testing.assert_array_equal(from_array.masks, result.masks)

    predictor.conf = float(np.median(result.scores))  # masks are filtered with their boxes
    kept = predictor(str(path))
    keep = result.scores >= predictor.conf
    assert 0 < len(kept) == keep.sum() < len(result)
    np.testing.assert_array_equal(kept.masks, result.masks[keep])
    np.testing.assert_array_equal(kept.boxes, result.boxes[keep])


def test_demo_draws_solov2_masks_on_an_image(shapes4, ckpt, tmp_path):
    path = shapes4 / "val" / "000001.jpg"
    proc = start_tool("demo.py", "image", "-f", EXP_FILE, "-c", ckpt, "--path", path,
                      "--conf", "0.3", "--device", "cpu", "--save_result",
                      *tiny_opts("output_dir", tmp_path), cwd=tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "detections" in err and out.strip().splitlines()[-1].startswith("results saved to ")
    drawn = list((tmp_path / EXP_FILE.stem / "vis_res").glob("*/000001.jpg"))
    assert len(drawn) == 1
    original, picture = read_image(path), read_image(drawn[0])
    assert picture.shape == original.shape
    # the overlays tint far more than the box lines and labels alone would
    changed = (np.abs(picture.astype(int) - original.astype(int)).max(2) > 30).mean()
    assert changed > 0.2, changed


def test_eval_writes_and_scores_bbox_and_segm(shapes4, ckpt, tmp_path):
    proc = start_tool("eval.py", "-f", EXP_FILE, "-c", ckpt, "-b", "2", "-w", "0", "--device",
                      "cpu", *tiny_opts(*_data_opts(shapes4), "output_dir", tmp_path),
                      cwd=tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    log = out + err
    assert "Evaluate annotation type *bbox*" in log and "Evaluate annotation type *segm*" in log
    assert log.count("Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all") == 2, log[-3000:]
    assert log.count("Average Recall") == 12
    save_dir = tmp_path / EXP_FILE.stem
    bbox = json.loads((save_dir / "bbox.json").read_text())
    segm = json.loads((save_dir / "segm.json").read_text())
    assert len(bbox) == len(segm) > 0 and {d["image_id"] for d in segm} <= {1, 2}
    sizes = {img["id"]: (img["height"], img["width"])
             for img in json.loads((shapes4 / "annotations/val.json").read_text())["images"]}
    for d in segm:
        rle = d["segmentation"]
        assert tuple(rle["size"]) == sizes[d["image_id"]] and isinstance(rle["counts"], str)
    assert [(d["image_id"], d["category_id"], d["score"]) for d in bbox] == \
        [(d["image_id"], d["category_id"], d["score"]) for d in segm]

"""Predictor: paths and BGR arrays, boxes in original pixels, batches, overrides, errors."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from mmdet_lite.data.image_io import read_image  # noqa: E402
from mmdet_lite.data.synthetic import SHAPE_CATEGORIES  # noqa: E402
from mmdet_lite.utils.errors import UserError  # noqa: E402

from tiny_picodet import (  # noqa: E402
    EXP_FILE,
    NUM_CLASSES,
    TSIZE,
    data_opts,
    make_dataset,
    separated_model,
    tiny_exp,
    write_checkpoint,
)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("predictor")
    data_dir = make_dataset(root / "shapes", num_val=2)
    ckpt = write_checkpoint(root / "tiny.pth", bare=True)
    return data_dir, ckpt


def _predictor(assets, **kwargs):
    from mmdet_lite import Predictor

    data_dir, ckpt = assets
    opts = data_opts(data_dir)
    overrides = dict(zip(opts[0::2], opts[1::2]))
    overrides.update(kwargs.pop("overrides", {}))
    return Predictor(str(EXP_FILE), str(ckpt), device="cpu", tsize=kwargs.pop("tsize", TSIZE),
                     **kwargs, **overrides)


def test_path_and_array_give_boxes_in_original_pixels(assets):
    data_dir, _ = assets
    predictor = _predictor(assets, conf=0.2)
    path = sorted((data_dir / "val").glob("*.jpg"))[0]
    image = read_image(path)
    result = predictor(str(path))
    same = predictor(image)
    assert len(result) > 0 and result.masks is None
    assert result.boxes.dtype == np.float32 and result.boxes.shape == (len(result), 4)
    assert result.scores.dtype == np.float32 and result.labels.dtype == np.int64
    assert (result.scores >= 0.2).all() and result.labels.max() < NUM_CLASSES
    assert result.names == [name for _, name in sorted(SHAPE_CATEGORIES)]
    np.testing.assert_array_equal(result.boxes, same.boxes)

    # The same model by hand: resize to 160x160, run, scale boxes back by the original size.
    model = separated_model()
    h, w = image.shape[:2]
    chw, scale = predictor.transform(image)
    np.testing.assert_allclose(scale, [TSIZE / h, TSIZE / w], rtol=1e-6)
    with torch.no_grad():
        scores, boxes = model(torch.from_numpy(chw)[None].float())
    best = int(np.argmax(result.scores))
    label_scores = scores[0, :, result.labels[best]]
    anchor = torch.isclose(label_scores, torch.tensor(result.scores[best])).nonzero()
    expected = boxes[0, anchor[0, 0]].numpy() / np.array([TSIZE / w, TSIZE / h] * 2)
    expected = np.clip(expected, 0, [w, h, w, h])  # the Predictor clips boxes to the image
    np.testing.assert_allclose(result.boxes[best], expected, rtol=1e-5, atol=1e-3)
    assert result.boxes[:, 2].max() > TSIZE or w <= TSIZE  # original pixels, not 160-pixel ones
    assert (result.boxes >= 0).all() and (result.boxes[:, 0::2] <= w).all() \
        and (result.boxes[:, 1::2] <= h).all()
    text = repr(result)
    assert text.startswith(f"Result({len(result)} detections: ") and "\n" not in text


def test_batch_equals_single_images_and_overrides_apply(assets):
    data_dir, _ = assets
    predictor = _predictor(assets, conf=0.0, overrides={"head.nms.keep_top_k": 7})
    assert predictor.exp.test_size == (TSIZE, TSIZE)
    assert predictor.exp.head["nms"]["score_threshold"] == 0.0
    paths = sorted(str(p) for p in (data_dir / "val").glob("*.jpg"))
    batch = predictor.predict_batch(paths)
    for path, got in zip(paths, batch):
        single = predictor(path)
        assert len(got) == len(single) == 7
        np.testing.assert_allclose(got.boxes, single.boxes, atol=1e-3)
        np.testing.assert_allclose(got.scores, single.scores, atol=1e-5)


def test_bad_inputs_are_user_errors(assets):
    predictor = _predictor(assets, tsize=(128, 160))
    assert predictor.exp.test_size == (128, 160)
    with pytest.raises(UserError, match="image file not found: nope.jpg"):
        predictor("nope.jpg")
    with pytest.raises(UserError, match="BGR uint8 array"):
        predictor(np.zeros((10, 10), np.float32))
    with pytest.raises(UserError, match="unknown exp key 'head.nms.keep_topk'"):
        _predictor(assets, overrides={"head.nms.keep_topk": 5})
    with pytest.raises(UserError, match="--tsize abc"):
        _predictor(assets, tsize="abc")


def test_conf_reaches_the_post_processing_through_the_exp(assets, monkeypatch):
    """The Predictor asks the exp for its score threshold and lowers it to ``conf`` through
    ``set_score_threshold``: it never reads a family's config layout."""
    from mmdet_lite import Predictor

    data_dir, ckpt = assets
    exp = tiny_exp(*data_opts(data_dir))
    calls = []
    monkeypatch.setattr(type(exp), "get_score_threshold", lambda self: 0.4)
    monkeypatch.setattr(type(exp), "set_score_threshold", lambda self, value: calls.append(value))
    Predictor(exp, str(ckpt), conf=0.3)
    assert calls == [0.3]
    Predictor(exp, str(ckpt), conf=0.5)  # a higher conf leaves the NMS as it is
    assert calls == [0.3]

    def refuse(self, value):
        raise AssertionError("set_score_threshold called on an exp without a score threshold")

    monkeypatch.setattr(type(exp), "get_score_threshold", lambda self: None)
    monkeypatch.setattr(type(exp), "set_score_threshold", refuse)
    assert Predictor(exp, str(ckpt), conf=0.0).conf == 0.0


def test_a_trained_checkpoint_brings_its_class_count_and_names(assets, tmp_path):
    from mmdet_lite import Predictor
    from mmdet_lite.utils.checkpoint import save_checkpoint

    data_dir, _ = assets
    names = [f"thing{k}" for k in range(NUM_CLASSES)]
    ckpt = save_checkpoint(dict(model=separated_model().state_dict(), num_classes=NUM_CLASSES,
                                class_names=names, epoch=3), tmp_path / "trained.pth")
    # the training exp (80 classes by default), no num_classes, no annotation file
    predictor = Predictor(str(EXP_FILE), str(ckpt), device="cpu", tsize=TSIZE, conf=0.2)
    assert predictor.exp.num_classes == NUM_CLASSES and predictor.names == names
    result = predictor(str(sorted((data_dir / "val").glob("*.jpg"))[0]))
    assert len(result) and all(result.names[k].startswith("thing") for k in result.labels)
    # what the user types wins
    with pytest.raises(UserError, match="another number of classes"):
        Predictor(str(EXP_FILE), str(ckpt), device="cpu", num_classes=3)

"""ONNX export: onnxruntime agrees with PyTorch, with and without the NMS in the graph; the graph's
outputs are the ones the model declares."""
import json

import numpy as np
import onnx
import pytest
import torch

from mmdet_lite.core.cli_args import export_parser, parse_args
from mmdet_lite.data.geometric import TestTransform
from mmdet_lite.data.image_io import read_image
from mmdet_lite.exporting.cli import run_export
from mmdet_lite.exporting.onnx_export import clip_boxes, compare_outputs, export_onnx, run_onnx
from mmdet_lite.models.architectures.base import Detector
from mmdet_lite.utils.errors import UserError

from tiny_picodet import (
    EXP_FILE,
    NUM_CLASSES,
    TSIZE,
    make_dataset,
    separated_model,
    write_checkpoint,
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("onnx")
    data_dir = make_dataset(tmp / "shapes", num_val=3)
    transform = TestTransform(TSIZE)
    images = [transform(read_image(p))[0] for p in sorted((data_dir / "val").glob("*.jpg"))]
    return tmp, write_checkpoint(tmp / "tiny.pth"), torch.from_numpy(np.stack(images)).float()


def _export(tmp, ckpt, name, *flags):
    out = tmp / name
    argv = ["-f", str(EXP_FILE), "-c", str(ckpt), "--output-name", str(out), "--tsize", str(TSIZE),
            *flags, "num_classes", str(NUM_CLASSES)]
    assert run_export(parse_args(export_parser(), argv)) == str(out)
    return out


def _reference(images):
    """Detections of the PyTorch model (boxes in input pixels: scale factor 1, clipped to the
    input as the graph clips them), sorted."""
    model = separated_model()
    with torch.no_grad():
        sizes = torch.tensor([images.shape[-2:]] * len(images))
        dets = model.postprocess(model(images), torch.ones(len(images), 2), sizes, sizes)
    rows = [(i, int(label), float(s), *map(float, b)) for i, d in enumerate(dets)
            for b, s, label in zip(clip_boxes(d.boxes, images.shape[-2:]), d.scores, d.labels)]
    return sorted(rows, key=lambda r: (r[0], r[1], -r[2], r[3]))


def _onnx_rows(outputs):
    boxes, scores, labels, batch = outputs
    assert boxes.dtype == np.float32 and labels.dtype == np.int64 and batch.dtype == np.int64
    rows = [(int(i), int(label), float(s), *map(float, b))
            for b, s, label, i in zip(boxes, scores, labels, batch)]
    return sorted(rows, key=lambda r: (r[0], r[1], -r[2], r[3]))


def _assert_same(got, expected):
    assert len(got) == len(expected) > 0
    assert [r[:2] for r in got] == [r[:2] for r in expected]
    np.testing.assert_allclose(np.array([r[2:] for r in got]), np.array([r[2:] for r in expected]),
                               rtol=0, atol=1e-4)


def test_postprocess_export_matches_pytorch_detections(setup, capsys):
    tmp, ckpt, images = setup
    path = _export(tmp, ckpt, "post.onnx")
    assert "max abs diff" in capsys.readouterr().out
    proto = onnx.load(str(path))
    assert [o.name for o in proto.graph.output] == ["boxes", "scores", "labels", "batch_indices"]
    assert any(n.op_type == "NonMaxSuppression" for n in proto.graph.node)
    assert {p.key for p in proto.metadata_props} >= {"class_names", "test_size", "postprocess"}
    _assert_same(_onnx_rows(run_onnx(path, images[:1].numpy())), _reference(images[:1]))


def test_raw_export_matches_pytorch_outputs(setup):
    tmp, ckpt, images = setup
    path = _export(tmp, ckpt, "raw.onnx", "--no-postprocess")
    scores, boxes = run_onnx(path, images[:1].numpy())
    with torch.no_grad():
        ref_scores, ref_boxes = separated_model()(images[:1])
    np.testing.assert_allclose(scores, ref_scores.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(boxes, ref_boxes.numpy(), rtol=0, atol=1e-4)


def test_dynamic_export_takes_other_batches_and_sizes(setup):
    tmp, ckpt, images = setup
    path = _export(tmp, ckpt, "dyn.onnx", "--dynamic", "--opset", "13")
    _assert_same(_onnx_rows(run_onnx(path, images.numpy())), _reference(images))
    small = torch.nn.functional.interpolate(images[:2], size=(96, 128))
    _assert_same(_onnx_rows(run_onnx(path, small.numpy())), _reference(small))


def test_export_errors(setup):
    tmp, ckpt, _ = setup
    with pytest.raises(UserError, match="opset 11 or newer"):
        _export(tmp, ckpt, "old.onnx", "--opset", "10")
    (tmp / "a_file").write_text("")
    with pytest.raises(UserError, match="a_file"):
        _export(tmp, ckpt, "a_file/x.onnx")


class _MaskDetector(Detector):
    """A stand-in mask model: one 1x1 conv whose map thresholds into a mask per image; it declares
    five post-processed outputs, a ``masks`` one among them."""

    onnx_raw_outputs = {"heat": "float32 (N, 1, H, W)"}
    onnx_post_outputs = {"boxes": "float32 (N, 4) the whole input",
                         "scores": "float32 (N,) mean heat",
                         "labels": "int64 (N,) zeros",
                         "masks": "bool (N, H, W) heat above its mean",
                         "batch_indices": "int64 (N,) the image"}

    def __init__(self, outputs_returned=5):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 1)
        self.outputs_returned = outputs_returned

    def forward(self, images):
        return (self.conv(images / 255.0),)

    def check_onnx_export(self, opset, dynamic, postprocess=True):
        pass

    def onnx_postprocess(self, outputs, images, dynamic=False):
        heat = outputs[0]
        num, _, h, w = heat.shape
        scores = heat.mean((1, 2, 3))
        boxes = torch.tensor([[-5.0, -3.0, w + 7.0, h + 9.0]]).expand(num, 4)  # off the image
        masks = heat[:, 0] > scores[:, None, None]
        labels = torch.zeros(num, dtype=torch.int64)
        result = (boxes, scores, labels, masks, torch.arange(num))
        return result[:self.outputs_returned]


def test_exporter_uses_the_outputs_the_model_declares(tmp_path):
    torch.manual_seed(0)
    model = _MaskDetector().eval()
    path = tmp_path / "mask.onnx"
    export_onnx(model, path, (16, 24), batch_size=2)
    proto = onnx.load(str(path))
    assert [o.name for o in proto.graph.output] == list(_MaskDetector.onnx_post_outputs)
    meta = {p.key: json.loads(p.value) for p in proto.metadata_props}
    assert meta["outputs"] == _MaskDetector.onnx_post_outputs and meta["postprocess"] is True
    images = torch.randint(0, 256, (2, 3, 16, 24)).float()
    boxes, scores, labels, masks, batch = run_onnx(path, images.numpy())
    with torch.no_grad():
        expected = model.onnx_postprocess(model(images), images)
    np.testing.assert_array_equal(boxes, [[0, 0, 24, 16]] * 2)  # the graph clips to the input
    expected = (clip_boxes(expected[0], images.shape[-2:]),) + tuple(expected[1:])
    assert masks.dtype == np.bool_ and masks.shape == (2, 16, 24)
    np.testing.assert_array_equal(masks, expected[3].numpy())
    np.testing.assert_allclose(scores, expected[1].numpy(), rtol=0, atol=1e-6)
    assert batch.tolist() == [0, 1] and labels.dtype == np.int64
    names = list(_MaskDetector.onnx_post_outputs)
    assert compare_outputs(expected, [boxes, scores, labels, masks, batch], names=names) < 1e-5
    raw = tmp_path / "raw.onnx"
    export_onnx(model, raw, (16, 24), postprocess=False)
    assert [o.name for o in onnx.load(str(raw)).graph.output] == ["heat"]
    with pytest.raises(ValueError, match=r"returned 4 tensors but declares \['boxes', 'scores', "
                                         r"'labels', 'masks', 'batch_indices'\]"):
        export_onnx(_MaskDetector(outputs_returned=4).eval(), tmp_path / "bad.onnx", (16, 24))

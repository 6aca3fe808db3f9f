"""ONNX export: onnxruntime agrees with PyTorch, with and without the NMS in the graph."""
import numpy as np
import onnx
import pytest
import torch
from tiny_picodet import (EXP_FILE, NUM_CLASSES, TSIZE, make_dataset, separated_model,
                          write_checkpoint)

from mmdet_lite.core.cli_args import export_parser, parse_args
from mmdet_lite.data.image_io import read_image
from mmdet_lite.data.geometric import TestTransform
from mmdet_lite.exporting.cli import run_export
from mmdet_lite.exporting.onnx_export import run_onnx
from mmdet_lite.utils.errors import UserError


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
    """Detections of the PyTorch model (boxes in input pixels: scale factor 1), sorted."""
    model = separated_model()
    with torch.no_grad():
        dets = model.postprocess(model(images), torch.ones(len(images), 2))
    rows = [(i, int(l), float(s), *map(float, b)) for i, d in enumerate(dets)
            for b, s, l in zip(d["boxes"], d["scores"], d["labels"])]
    return sorted(rows, key=lambda r: (r[0], r[1], -r[2], r[3]))


def _onnx_rows(outputs):
    boxes, scores, labels, batch = outputs
    assert boxes.dtype == np.float32 and labels.dtype == np.int64 and batch.dtype == np.int64
    rows = [(int(i), int(l), float(s), *map(float, b))
            for b, s, l, i in zip(boxes, scores, labels, batch)]
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

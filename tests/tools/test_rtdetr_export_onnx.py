"""RT-DETR's ONNX export through ``tools/export_onnx.py`` (``run_export``) against PyTorch in
onnxruntime: fixed size and ``--dynamic`` (batch, height and width), raw outputs and
post-processed detections.

A DETR keeps the top ``num_queries`` positions of its encoder's scores. With random weights many
scores nearly tie (flat image regions), and rounding may swap a position at the top-k boundary,
which changes every decoder output. So the checks also read two inner tensors of the exported
graphs: the encoder's scores over all positions (before the top-k), compared element by element,
and the kept positions, which must be PyTorch's except for near-ties. Where they are PyTorch's,
the raw outputs are compared query by query and the detections as sets.
"""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from mmdet_lite.core.cli_args import export_parser, parse_args
from mmdet_lite.data.synthetic import make_shapes_dataset
from mmdet_lite.exporting.cli import run_export
from mmdet_lite.exporting.onnx_export import clip_boxes, compare_outputs
from mmdet_lite.utils.checkpoint import save_checkpoint
from mmdet_lite.utils.errors import UserError

from tiny_rtdetr import EXP_FILE, NUM_CLASSES, TOP, TSIZE, separated_model, val_images

NUM_VAL = 3
TIE = 1e-4  # encoder scores this close to the top-k boundary may be kept by either side


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rtdetr_onnx")
    make_shapes_dataset(tmp / "shapes", num_train=0, num_val=NUM_VAL, seed=0)
    model = separated_model()
    ckpt = save_checkpoint({"model": model.state_dict()}, tmp / "r18vd.pth")
    return tmp, tmp / "shapes", ckpt, model


def _export(tmp, ckpt, name, *flags):
    argv = ["-f", EXP_FILE, "-c", ckpt, "--output-name", tmp / name, "--tsize", TSIZE, *flags,
            "num_classes", NUM_CLASSES]
    return run_export(parse_args(export_parser(), [str(a) for a in argv]))


def _dims(path):
    """Input and output dims of an ONNX file: name -> [dim_param or dim_value]."""
    graph = onnx.load(path).graph
    return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (*graph.input, *graph.output)}


def _session(path):
    """An onnxruntime session of an exported file, its outputs followed by the encoder's scores
    (N, S, C) before the top-k and the kept positions (N, Q)."""
    proto = onnx.load(path)
    heads = [n for n in proto.graph.node if n.name.startswith("/model/decoder/enc_score_head/")]
    top_k = next(n for n in proto.graph.node if n.name == "/model/decoder/TopK")
    proto.graph.output.extend(onnx.ValueInfoProto(name=name)
                              for name in (heads[-1].output[0], top_k.output[1]))
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _reference(model, images):
    """PyTorch on ``images (N, 3, H, W)``: raw outputs, encoder scores (N, S, C), kept positions
    (N, Q) and the detections (scale factor 1: input pixels) flattened as the graph's."""
    num = len(images)
    with torch.no_grad():  # the steps of ``model(images)``, keeping the encoder's top-k
        memory, shapes = model.decoder.flatten_memory(model.forward_features(
            model.normalize(images)))
        queries = model.decoder.select_queries(memory, shapes)
        logits, boxes = model.decoder.decode(queries["target"], queries["ref_unact"], memory,
                                             shapes)
    outputs = logits[-1], boxes[-1]
    sizes = torch.tensor([list(images.shape[-2:])] * num)
    dets = model.postprocess(outputs, torch.ones(num, 2), sizes, sizes)
    post = [torch.cat([getattr(d, k) for d in dets]) for k in ("boxes", "scores", "labels")]
    post[0] = clip_boxes(post[0], images.shape[-2:])  # the graph clips to the input
    return (outputs, queries["enc_outputs_class"].numpy(), queries["topk_ind"].numpy(),
            post + [torch.arange(num).repeat_interleave(TOP)])


def _check(model, images, raw_session, post_session):
    """Both graphs against PyTorch on ``images``. Returns the largest differences of the encoder
    scores, of the raw outputs and of the detections (``compare_outputs``), and the number of
    images whose kept positions agree (those whose decoder outputs are compared)."""
    (logits, boxes), enc, kept, post = _reference(model, images)
    feed = {"images": images.numpy()}
    onnx_logits, onnx_boxes, onnx_enc, onnx_kept = raw_session.run(None, feed)
    *detections, post_enc, post_kept = post_session.run(None, feed)
    assert onnx_logits.shape == (len(images), TOP, NUM_CLASSES)
    assert onnx_boxes.shape == (len(images), TOP, 4) and detections[2].dtype == np.int64
    assert np.array_equal(detections[3], np.repeat(np.arange(len(images)), TOP))
    enc_diff = max(float(np.abs(onnx_enc - enc).max()), float(np.abs(post_enc - enc).max()))
    assert enc_diff < 1e-4
    agree, raw_diff = [], 0.0
    for i in range(len(images)):
        scores = enc[i].max(-1)
        swapped = (set(kept[i]) ^ set(onnx_kept[i])) | (set(kept[i]) ^ set(post_kept[i]))
        assert all(abs(scores[j] - scores[kept[i]].min()) < TIE for j in swapped), swapped
        if swapped:
            continue
        agree.append(i)
        ref, got = np.argsort(kept[i]), np.argsort(onnx_kept[i])  # by position
        raw_diff = max(raw_diff, float(np.abs(logits[i].numpy()[ref] - onnx_logits[i][got]).max()),
                       float(np.abs(boxes[i].numpy()[ref] - onnx_boxes[i][got]).max()))
    assert raw_diff < 1e-4
    pick = np.isin(post[3].numpy(), agree), np.isin(detections[3], agree)
    det_diff = compare_outputs([t[torch.from_numpy(pick[0])] for t in post],
                               [d[pick[1]] for d in detections])
    assert det_diff < 1e-3  # boxes in input pixels
    score_diff = np.sort(post[1].numpy()[pick[0]]) - np.sort(detections[1][pick[1]])
    assert np.abs(score_diff).max(initial=0.0) < 1e-5
    return enc_diff, raw_diff, det_diff, len(agree)


def test_fixed_size_export_matches_pytorch(setup, capsys):
    tmp, data_dir, ckpt, model = setup
    raw = _export(tmp, ckpt, "raw.onnx", "--no-postprocess", "--batch-size", NUM_VAL)
    post = _export(tmp, ckpt, "post.onnx", "--batch-size", NUM_VAL,
                   "--check-image", data_dir / "val" / "000001.jpg")
    assert "max abs diff" in capsys.readouterr().out
    assert _dims(raw) == dict(images=[NUM_VAL, 3, TSIZE, TSIZE], logits=[NUM_VAL, TOP, NUM_CLASSES],
                              boxes=[NUM_VAL, TOP, 4])
    proto = onnx.load(raw)
    assert proto.opset_import[0].version == 17
    assert any(n.op_type == "GridSample" for n in proto.graph.node)
    proto = onnx.load(post)
    assert [o.name for o in proto.graph.output] == ["boxes", "scores", "labels", "batch_indices"]
    meta = {p.key: json.loads(p.value) for p in proto.metadata_props}
    assert meta["postprocess"] is True and meta["box_format"] == "x1y1x2y2 input pixels"
    assert _check(model, val_images(data_dir), _session(raw), _session(post))[-1] > 0


def test_dynamic_export_runs_at_other_batches_and_sizes(setup):
    """Traced on one 160 x 160 image, run on one 320 x 320 image and on two 256 x 384 ones."""
    tmp, data_dir, ckpt, model = setup
    raw = _export(tmp, ckpt, "dyn_raw.onnx", "--dynamic", "--no-postprocess")
    post = _export(tmp, ckpt, "dyn_post.onnx", "--dynamic")
    images_dims = ["batch", 3, "height", "width"]
    assert _dims(raw) == dict(images=images_dims, logits=["batch", TOP, NUM_CLASSES],
                              boxes=["batch", TOP, 4])
    assert _dims(post) == dict(images=images_dims, boxes=["detections", 4], scores=["detections"],
                               labels=["detections"], batch_indices=["detections"])
    val = val_images(data_dir)
    sessions = _session(raw), _session(post)
    compared = sum(_check(model, F.interpolate(images, size=size, mode="bilinear"), *sessions)[-1]
                   for images, size in ((val[:1], (320, 320)), (val[1:], (256, 384))))
    assert compared > 0


def test_export_refuses_old_opsets(setup):
    tmp, _, ckpt, _ = setup
    with pytest.raises(UserError, match="--opset 15: .*GridSample.*opset 16"):
        _export(tmp, ckpt, "old.onnx", "--opset", "15", "--dynamic")
    assert not (tmp / "old.onnx").exists()

"""SOLOv2's ONNX export through ``tools/export_onnx.py`` (``run_export``) against PyTorch in
onnxruntime: the raw outputs (``--no-postprocess``, dynamic batch and size), the post-processing
in the graph (Matrix NMS included) against ``SOLOv2.postprocess`` in input pixels, and DCNv2 (a
tiny enhance model, offsets of several pixels) as ONNX ``DeformConv`` at opset 19.

The tiny models of ``tiny_solov2`` with spread scores (``spread_model``) on the shapes images
resized to 128x160; PyTorch's reference detections come from ``postprocess`` with scale factors
1 and the input as the original size, where its masks are the graph's (upsampled x4,
thresholded).
"""
import cv2
import numpy as np
import onnx
import pytest
import torch

from mmdet_lite.core.cli_args import export_parser, parse_args
from mmdet_lite.data.image_io import read_image
from mmdet_lite.data.synthetic import make_shapes_dataset
from mmdet_lite.exporting.cli import check_input, run_export
from mmdet_lite.exporting.onnx_export import run_onnx
from mmdet_lite.models.architectures.solov2 import SOLOv2
from mmdet_lite.utils.checkpoint import save_checkpoint
from mmdet_lite.utils.errors import UserError

from tiny_solov2 import DCN_EXP_FILE, DCN_OPTS, EXP_FILE, solov2_exp, spread_model, tiny_opts

SIZE = (128, 160)
OTHER_SIZE = (96, 192)
SCORE_TOL = 1e-4
# Where a stride-4 mask pixel sits within float error of the 0.5 threshold, Matrix NMS's overlap of
# that class moves, so a few instances per image may differ by up to TIE_SCORE_TOL in score.
TIE_SCORE_TOL = 2e-3
MAX_TIES = 2
MIN_MASK_IOU = 0.99


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("solov2_onnx")
    make_shapes_dataset(tmp / "shapes", num_train=0, num_val=3, seed=0)
    images = np.stack([cv2.resize(read_image(p), SIZE[::-1]).transpose(2, 0, 1)
                       for p in sorted((tmp / "shapes" / "val").glob("*.jpg"))])
    plain = spread_model(solov2_exp())
    dcn = spread_model(solov2_exp(*DCN_OPTS, exp_file=DCN_EXP_FILE), offset_std=0.05)
    ckpts = {name: save_checkpoint({"model": m.state_dict()}, tmp / f"{name}.pth")
             for name, m in (("plain", plain), ("dcn", dcn))}
    return dict(tmp=tmp, images=torch.from_numpy(images).float(), plain=plain, dcn=dcn,
                ckpts=ckpts)


def _export(setup, name, *flags, dcn=False, opts=()):
    exp_file, extra = (DCN_EXP_FILE, DCN_OPTS) if dcn else (EXP_FILE, [])
    out = setup["tmp"] / name
    argv = ["-f", exp_file, "-c", setup["ckpts"]["dcn" if dcn else "plain"], "--output-name",
            out, *flags, *tiny_opts(*extra, *opts)]
    assert run_export(parse_args(export_parser(), [str(a) for a in argv])) == str(out)
    return out


def _dims(path):
    graph = onnx.load(str(path)).graph
    return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (*graph.input, *graph.output)}


def _reference(model, images):
    """PyTorch's detections of ``images`` in input pixels (``postprocess`` at scale 1)."""
    sizes = torch.tensor([list(images.shape[-2:])] * len(images))
    with torch.no_grad():
        return model.postprocess(model(images), torch.ones(len(images), 2), sizes, sizes)


def _mask_ious(a, b):
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    inter = a @ b.T
    return inter / (a.sum(1)[:, None] + b.sum(1)[None] - inter)


def _assert_same_instances(expected, outputs, image_hw, min_count=1):
    """The graph's ``(masks, scores, labels, batch_indices)`` against per-image ``Detections``:
    the same number per image, scores best first within 1e-4 (all but ``MAX_TIES`` near-ties, those
    within ``TIE_SCORE_TOL``), and every PyTorch instance with an
    ONNX one of the same label, a score within 1e-4 and mask IoU >= 0.99 (near-equal scores may
    come in another order)."""
    masks, scores, labels, batch = outputs
    assert masks.dtype == np.bool_ and masks.shape == (len(scores), *image_hw)
    assert labels.dtype == np.int64 and batch.dtype == np.int64 and scores.dtype == np.float32
    assert np.all(np.diff(batch) >= 0)  # grouped by image
    for image, det in enumerate(expected):
        pick = batch == image
        assert pick.sum() == len(det) >= min_count
        if not len(det):
            continue
        assert np.all(np.diff(scores[pick]) <= 0)  # best first
        diff = np.abs(scores[pick] - det.scores.numpy())
        assert diff.max() <= TIE_SCORE_TOL and (diff > SCORE_TOL).sum() <= MAX_TIES, diff.max()
        partner = ((det.labels.numpy()[:, None] == labels[pick][None])
                   & (np.abs(det.scores.numpy()[:, None] - scores[pick][None]) <= TIE_SCORE_TOL))
        best = np.where(partner, _mask_ious(det.masks.numpy(), masks[pick]), 0).max(1)
        assert best.min() >= MIN_MASK_IOU, best.min()


def _assert_raw_equal(model, images, outputs):
    with torch.no_grad():
        expected = model(images)
    assert len(outputs) == len(expected) == 3
    for got, ref in zip(outputs, expected):
        np.testing.assert_allclose(got, ref.numpy(), rtol=0, atol=1e-4)


def _resized(images, size):
    return torch.nn.functional.interpolate(images, size=size, mode="bilinear").round()


def test_raw_export_takes_other_batches_and_sizes(setup):
    path = _export(setup, "raw.onnx", "--no-postprocess", "--dynamic")
    dims = _dims(path)
    assert dims["images"] == ["batch", 3, "height", "width"]
    assert dims["cate_scores"] == ["batch", 3872, 5] and dims["kernels"] == ["batch", 3872, 32]
    assert dims["mask_feats"] == ["batch", 32, "mask_height", "mask_width"]
    images = setup["images"]
    _assert_raw_equal(setup["plain"], images, run_onnx(path, images.numpy()))
    small = _resized(images[1:2], OTHER_SIZE)
    _assert_raw_equal(setup["plain"], small, run_onnx(path, small.numpy()))


def test_dynamic_postprocess_export_takes_other_batches_and_sizes(setup):
    path = _export(setup, "post_dynamic.onnx", "--dynamic")
    assert _dims(path)["masks"] == ["detections", "height", "width"]
    images = setup["images"]
    _assert_same_instances(_reference(setup["plain"], images), run_onnx(path, images.numpy()),
                           SIZE, min_count=50)
    small = _resized(images[:2], OTHER_SIZE)
    _assert_same_instances(_reference(setup["plain"], small), run_onnx(path, small.numpy()),
                           OTHER_SIZE, min_count=50)


def test_postprocess_export_matches_pytorch_instances(setup, capsys):
    """The graph's outputs are the declared ones; a test size that is no multiple of 32 is traced
    padded to one (as eval batches are padded); ``--check-image`` goes through the test
    transform and that padding."""
    image = sorted((setup["tmp"] / "shapes" / "val").glob("*.jpg"))[0]
    path = _export(setup, "post.onnx", "--check-image", image, opts=("test_size", "100,150"))
    out = capsys.readouterr().out
    assert "(masks: 1 - IoU)" in out and float(out.split("max abs diff ")[1].split()[0]) <= 1e-2
    proto = onnx.load(str(path))
    assert [o.name for o in proto.graph.output] == list(SOLOv2.onnx_post_outputs)
    dims = _dims(path)
    assert dims["images"] == [1, 3, *SIZE] and dims["masks"] == ["detections", *SIZE]
    exp = solov2_exp("test_size", "100,150")
    images = check_input((128, 160), 1, image, exp.get_test_transform())
    chw, _ = exp.get_test_transform()(read_image(image))
    assert chw.shape[1] <= 100 and chw.shape[2] <= 150 and not images[0, :, 100:].any()
    _assert_same_instances(_reference(setup["plain"], images), run_onnx(path, images.numpy()),
                           SIZE, min_count=50)


def test_images_without_candidates_give_no_rows(setup):
    """A score threshold between the images' best scores: one image has detections, the others
    none; alone, an image without candidates gives zero rows."""
    images = setup["images"]
    with torch.no_grad():
        best = setup["plain"](images)[0].flatten(1).max(1).values
    top, second = best.sort(descending=True).values[:2].tolist()
    threshold = (top + second) / 2
    path = _export(setup, "post_threshold.onnx", "--dynamic",
                   opts=("head.score_threshold", threshold))
    model = solov2_exp("head.score_threshold", threshold).get_model().eval()
    model.load_state_dict(setup["plain"].state_dict())
    expected = _reference(model, images)
    assert sorted(len(d) > 0 for d in expected) == [False, False, True]
    _assert_same_instances(expected, run_onnx(path, images.numpy()), SIZE, min_count=0)
    empty = images[[int(best.argmin())]]
    masks, scores, labels, batch = run_onnx(path, empty.numpy())
    assert masks.shape == (0, *SIZE) and scores.shape == labels.shape == batch.shape == (0,)


def _offset_magnitude(model, images):
    """``(calls, offset)``: how many deformable convolutions run on ``images`` (the head's run
    once per level) and their largest offset (pixels)."""
    largest = []
    hooks = [m.conv_offset.register_forward_hook(
        lambda mod, inp, out: largest.append(out[:, :2 * 9].abs().max().item()))
        for m in model.modules() if hasattr(m, "conv_offset")]
    with torch.no_grad():
        model(images)
    for hook in hooks:
        hook.remove()
    return len(largest), max(largest)


def test_dcn_exports_as_deform_conv_at_opset_19(setup):
    model, images = setup["dcn"], setup["images"]
    count, offset = _offset_magnitude(model, images)
    assert count == 24 and offset > 3.0, (count, offset)  # res3..5: 6, head 2 x 5, masks 8
    with pytest.raises(UserError, match=r"^--opset 17: SOLOv2 with deformable convolutions "
                                        r"\(DCNv2\) exports as ONNX DeformConv, which needs "
                                        r"opset 19"):
        _export(setup, "dcn17.onnx", dcn=True)
    path = _export(setup, "dcn.onnx", "--dynamic", "--opset", "19", dcn=True)
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("DeformConv") == count
    _assert_same_instances(_reference(model, images), run_onnx(path, images.numpy()), SIZE,
                           min_count=50)
    raw = _export(setup, "dcn_raw.onnx", "--no-postprocess", "--dynamic", "--opset", "19",
                  dcn=True)
    small = _resized(images[:2], OTHER_SIZE)
    _assert_raw_equal(model, small, run_onnx(raw, small.numpy()))


def test_postprocess_needs_opset_14(setup):
    with pytest.raises(UserError, match=r"^--opset 13: SOLOv2's post-processing \(Matrix NMS\) "
                                        "needs opset 14 or newer"):
        _export(setup, "old.onnx", "--opset", "13")

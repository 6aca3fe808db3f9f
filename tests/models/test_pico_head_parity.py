"""Parity of PicoHeadV2, the assembled PicoDet and multiclass_nms with PaddleDetection 2.6.0.

The Paddle side (tests/reference/paddle_picodet_head.py) builds ppdet's PicoDet from the config,
gives it random weights, runs it on two inputs of different sizes and saves the weights, the raw
head outputs and the final detections; we build the model from our exp, convert the weights with
mmdet_lite.convert and compare.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from mmdet_lite.convert.converter import convert_state_dict
from mmdet_lite.convert.pdparams import load_pdparams
from mmdet_lite.convert.picodet_rules import HEAD_RULES
from mmdet_lite.exp.build import get_exp
from mmdet_lite.models.heads.pico_head_v2 import PicoHeadV2
from mmdet_lite.models.post_process.detections import Detections
from mmdet_lite.models.post_process.multiclass_nms import multiclass_nms
from mmdet_lite.utils.boxes import anchor_points, distance2bbox

from conftest import PADDLE_CONFIGS, REPO_ROOT, run_paddle

REFERENCE = REPO_ROOT / "tests/reference/paddle_picodet_head.py"
CONFIGS = ["picodet_s_416_coco_lcnet", "picodet_l_640_coco_lcnet", "picodet_s_416_coco_npu"]
NUM_INPUTS = 2
SCORE_TOL = 1e-4
# Boxes reach ~700 px, where one float32 ulp is 6e-5: accumulated rounding stays within a few ulps.
BOX_TOL = 1e-3
DET_BOX_TOL = 1e-2
NMS_SETTINGS = [  # the same list as in the reference script
    dict(score_threshold=0.025, nms_top_k=1000, keep_top_k=100, nms_threshold=0.6),
    dict(score_threshold=0.3, nms_top_k=20, keep_top_k=30, nms_threshold=0.5),
    dict(score_threshold=0.5, nms_top_k=-1, keep_top_k=-1, nms_threshold=0.3),
]


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """Run every Paddle job once, two at a time: config name (or "units": NMS and the head
    variant) -> output folder."""
    def run(name):
        out_dir = tmp_path_factory.mktemp(name)
        if name == "units":
            run_paddle(REFERENCE, "units", out_dir)
        else:
            run_paddle(REFERENCE, "model", PADDLE_CONFIGS / "picodet" / f"{name}.yml", out_dir)
        return name, out_dir

    torch.set_num_threads(1)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, ["units"] + CONFIGS))


def detections_as_rows(det):
    columns = [det.labels[:, None], det.scores[:, None], det.boxes]
    return torch.cat([c.double() for c in columns], dim=1).numpy()


def assert_same_detections(ours, theirs, score_tol, box_tol):
    """Same rows [label, score, x1, y1, x2, y2] up to tolerance; order within a label may differ
    only between near-equal scores, so rows are matched by label and box."""
    assert ours.shape == theirs.shape, f"{len(ours)} detections vs Paddle's {len(theirs)}"
    np.testing.assert_array_equal(np.sort(ours[:, 0]), np.sort(theirs[:, 0]))
    unmatched = list(range(len(ours)))
    for row in theirs:
        close = [i for i in unmatched if ours[i, 0] == row[0]
                 and np.abs(ours[i, 2:] - row[2:]).max() <= box_tol
                 and abs(ours[i, 1] - row[1]) <= score_tol]
        assert close, f"Paddle detection {row} has no match"
        unmatched.remove(close[0])


@pytest.mark.parametrize("name", CONFIGS)
def test_picodet_matches_paddle(references, name):
    out_dir = references[name]
    exp = get_exp(REPO_ROOT / "exps/picodet" / f"{name}.py")
    model = exp.get_model().eval()
    state_dict, report = convert_state_dict(load_pdparams(out_dir / "model.pdparams"), model,
                                            exp.convert_rules)
    assert not report.missing and not report.unused
    assert sorted(k for k in report.dropped if k.startswith("head.head_")) == sorted(
        f"head.head_{kind}{i}.{p}" for kind in ("cls", "reg") for i in range(4)
        for p in ("weight", "bias"))
    model.load_state_dict(state_dict)
    ref = np.load(out_dir / "outputs.npz")
    for k in range(NUM_INPUTS):
        x = torch.from_numpy(ref[f"image{k}"])
        with torch.no_grad():
            scores, bboxes = model.head(model.forward_features(x))
            # The public path: 0..255 RGB images, normalised inside the model.
            full = model((x * model.pixel_std + model.pixel_mean) * 255.0)
        assert scores.shape == (1, bboxes.shape[1], exp.num_classes)
        np.testing.assert_allclose(scores.numpy(), ref[f"scores{k}"].transpose(0, 2, 1),
                                   rtol=0, atol=SCORE_TOL)
        np.testing.assert_allclose(bboxes.numpy(), ref[f"bboxes{k}"], rtol=0, atol=BOX_TOL)
        np.testing.assert_allclose(full[0].numpy(), scores.numpy(), rtol=0, atol=SCORE_TOL)
        np.testing.assert_allclose(full[1].numpy(), bboxes.numpy(), rtol=0, atol=BOX_TOL)

        scale_factor = torch.from_numpy(ref[f"scale_factor{k}"])
        input_size = torch.tensor([x.shape[-2:]])
        orig_size = (input_size / scale_factor).round().long()
        dets = model.postprocess((scores, bboxes), scale_factor, input_size, orig_size)
        assert len(dets) == 1 and isinstance(dets[0], Detections) and dets[0].masks is None
        assert dets[0].labels.dtype == torch.int64
        assert len(dets[0].scores) == int(ref[f"bbox_num{k}"][0])
        assert_same_detections(detections_as_rows(dets[0]), ref[f"bbox{k}"].astype(np.float64),
                               SCORE_TOL, DET_BOX_TOL)


def test_head_variant_matches_paddle(references):
    """Separate cls/reg towers without SE, no align head, leaky ReLU, reg_max 4, three strides."""
    out_dir = references["units"]
    wrapper = torch.nn.Module()
    wrapper.head = PicoHeadV2(
        num_classes=5, feat_in_chan=32, fpn_stride=(8, 16, 32), reg_max=4, use_align_head=False,
        conv_feat=dict(num_convs=2, share_cls_reg=False, use_se=False, act="leaky_relu")).eval()
    state_dict, report = convert_state_dict(load_pdparams(out_dir / "head_variant.pdparams"),
                                            wrapper, HEAD_RULES)
    assert not report.missing and not report.unused
    wrapper.load_state_dict(state_dict)
    ref = np.load(out_dir / "head_variant.npz")
    with torch.no_grad():
        scores, bboxes = wrapper.head([torch.from_numpy(ref[f"feat{i}"]) for i in range(3)])
    np.testing.assert_allclose(scores.numpy(), ref["scores"].transpose(0, 2, 1), rtol=0,
                               atol=SCORE_TOL)
    np.testing.assert_allclose(bboxes.numpy(), ref["bboxes"], rtol=0, atol=BOX_TOL)


def test_multiclass_nms_matches_paddle(references):
    ref = np.load(references["units"] / "nms.npz")
    boxes, scores = torch.from_numpy(ref["boxes"]), torch.from_numpy(ref["scores"])
    for k, setting in enumerate(NMS_SETTINGS):
        out_boxes, out_scores, labels = multiclass_nms(boxes, scores, **setting)
        ours = np.concatenate([labels[:, None].numpy(), out_scores[:, None].numpy(),
                               out_boxes.numpy()], 1)
        # Same rows in the same order (label, then score; Paddle's ties broken by index).
        np.testing.assert_array_equal(ours, ref[f"out{k}"], err_msg=f"setting {setting}")
        assert len(ours) == int(ref[f"num{k}"][0])


def test_multiclass_nms_hand_checked():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 5], [20, 20, 30, 30],
                          [0, 0, 10, 10.5]])
    scores = torch.tensor([[0.9, 0.88], [0.8, 0.0], [0.7, 0.0], [0.025, 0.6], [0.9, 0.1]])
    # Class 0: box 3 is not above the threshold; boxes 0 and 4 tie at 0.9 and the lower index
    # wins; 4 (IoU 0.95) and 1 (IoU 0.82) are suppressed, 2 (IoU 0.5) stays.
    # Class 1: 0 and 3 stay, 4 is suppressed by 0. Box 0 is kept under both labels.
    out_boxes, out_scores, labels = multiclass_nms(boxes, scores, keep_top_k=-1)
    assert labels.tolist() == [0, 0, 1, 1]
    assert out_scores.tolist() == pytest.approx([0.9, 0.7, 0.88, 0.6])
    assert out_boxes.tolist() == [[0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 10, 10], [20, 20, 30, 30]]
    # keep_top_k keeps the best three over all classes, still grouped by label.
    out_boxes, out_scores, labels = multiclass_nms(boxes, scores, keep_top_k=3)
    assert labels.tolist() == [0, 0, 1]
    assert out_scores.tolist() == pytest.approx([0.9, 0.7, 0.88])
    # nms_top_k limits the candidates of each class before NMS.
    _, out_scores, labels = multiclass_nms(boxes, scores, nms_top_k=1)
    assert labels.tolist() == [0, 1] and out_scores.tolist() == pytest.approx([0.9, 0.88])
    # IoU exactly at the threshold is kept (suppression needs IoU > nms_threshold).
    _, _, labels = multiclass_nms(boxes[[0, 2]], scores[[0, 2], :1], nms_threshold=0.5)
    assert labels.tolist() == [0, 0]
    empty = multiclass_nms(boxes, torch.zeros(5, 2))
    assert [t.shape[0] for t in empty] == [0, 0, 0]


def test_anchor_points_and_decoding():
    points, strides = anchor_points([(2, 3), (1, 2)], [8, 16], cell_offset=0.5)
    assert points.tolist() == [[0.5, 0.5], [1.5, 0.5], [2.5, 0.5], [0.5, 1.5], [1.5, 1.5],
                               [2.5, 1.5], [0.5, 0.5], [1.5, 0.5]]
    assert strides.flatten().tolist() == [8] * 6 + [16] * 2
    boxes = distance2bbox(points[:1], torch.tensor([[[0.5, 0.25, 1.0, 2.0]]])) * 8
    assert boxes.tolist() == [[[0.0, 2.0, 12.0, 20.0]]]


def test_head_shapes_and_raw_levels():
    head = PicoHeadV2(num_classes=3, feat_in_chan=16, conv_feat=dict(num_convs=1)).eval()
    feats = [torch.randn(2, 16, 40 // s, 24 // s) for s in (1, 2, 4, 8)]
    with torch.no_grad():
        cls_scores, regs = head.forward_levels(feats)
        scores, bboxes = head(feats)
    assert [tuple(c.shape) for c in cls_scores] == [(2, 3, f.shape[2], f.shape[3]) for f in feats]
    assert [tuple(r.shape) for r in regs] == [(2, 32, f.shape[2], f.shape[3]) for f in feats]
    num_anchors = sum(f.shape[2] * f.shape[3] for f in feats)
    assert scores.shape == (2, num_anchors, 3) and bboxes.shape == (2, num_anchors, 4)
    assert ((scores > 0) & (scores <= 1)).all()
    assert (bboxes[..., 2:] >= bboxes[..., :2]).all()
    assert not any(k.endswith("project") for k in head.state_dict())

"""Parity of SOLOv2Head, SOLOv2MaskHead, Matrix NMS and the post-processing with ppdet 2.6.0.

The Paddle side (tests/reference/paddle_solov2_head.py) builds ppdet's two heads from the shared
config, gives them random weights (GroupNorm affine away from identity, DCN offsets of pixels,
category logits biased so that hundreds of cells are candidates), runs them on random FPN maps
and runs ppdet's post-processing on its own raw outputs. We build the heads from our exp, convert
the weights with the head rule table and compare the raw outputs, then run our post-processing
on Paddle's raw outputs (a batch of two images of different sizes in one call) and compare the
instances.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from solov2_parity import (
    MIN_MASK_IOU,
    OUTPUT_TOL,
    SCORE_TOL,
    assert_scores_match,
    flat_paddle_outputs,
    mask_ious,
    offset_magnitudes,
    without_fake,
)

from mmdet_lite.convert.converter import convert_state_dict
from mmdet_lite.convert.pdparams import load_pdparams
from mmdet_lite.convert.solov2_head_rules import SOLOV2_HEAD_RULES
from mmdet_lite.exp.build import get_exp
from mmdet_lite.models.architectures.solov2 import build_solov2_heads
from mmdet_lite.models.heads.solov2_head import SOLOv2Head
from mmdet_lite.models.post_process.matrix_nms import mask_matrix_nms
from mmdet_lite.models.post_process.solov2_postprocess import paddle_orig_size, solov2_postprocess

from conftest import PADDLE_CONFIGS, REPO_ROOT, run_paddle

REFERENCE = REPO_ROOT / "tests/reference/paddle_solov2_head.py"
RUN_CONFIGS = ["solov2_r50_fpn_3x_coco", "solov2_r50_enhance_coco"]
KEYS_ONLY = ["solov2_r101_vd_fpn_3x_coco"]  # every tower conv a DCN: names and shapes
IMAGES = [((128, 160), (0.5, 0.5)), ((100, 150), (0.8, 0.75))]  # as in the reference script
ORIG_SIZES = [(256, 320), (125, 200)]  # the originals those scale factors come from
NMS_CASES = [(120, 500), (700, 500), (90, 500)]  # (candidates, pre_nms_top_n), as there


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """Run every Paddle job once, two at a time: name -> output folder."""
    def run(name):
        out_dir = tmp_path_factory.mktemp(name)
        if name in ("matrix_nms", "loss_inputs"):
            run_paddle(REFERENCE, name, out_dir)
        else:
            extra = ["--no-run"] if name in KEYS_ONLY else []
            run_paddle(REFERENCE, "heads", PADDLE_CONFIGS / "solov2" / f"{name}.yml", out_dir,
                       *extra)
        return name, out_dir

    torch.set_num_threads(1)
    tmp_path_factory.getbasetemp()  # created once, before the threads ask for it
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, RUN_CONFIGS + KEYS_ONLY + ["matrix_nms", "loss_inputs"]))


def converted_heads(name, out_dir):
    """Our two heads from the exp, under a module with the detector's attribute names, holding
    the converted Paddle weights."""
    exp = get_exp(REPO_ROOT / "exps/solov2" / f"{name}.py")
    model = torch.nn.Module()
    model.head, model.mask_head = build_solov2_heads(exp.num_classes, exp.neck["out_channel"],
                                                     exp.head, exp.mask_head, exp.mask_nms)
    params = load_pdparams(out_dir / "heads.pdparams")
    state_dict, report = convert_state_dict(params, model, SOLOV2_HEAD_RULES)
    assert not report.missing and not report.unused
    # Dropped: exactly Paddle's attribute aliases, each the same tensor as a converted key.
    aliases = {k: k.replace("solov2_head.", "solov2_head.bbox_head.").replace(
        "mask_head.conv_pred.", "mask_head.mask_feat_head.conv_pred.0.") for k in params
        if k.startswith(("solov2_head.solo_", "mask_head.conv_pred."))}
    assert sorted(report.dropped) == sorted(aliases) and len(aliases) >= 7
    assert all(np.array_equal(params[a], params[t]) and t in report.sources.values()
               for a, t in aliases.items())
    model.load_state_dict(state_dict)
    return exp, model.eval()


def paddle_levels(ref, num_levels=5):
    """Paddle's per-level eval outputs of ``ref`` in our flat layout (N, A, C), (N, A, E)."""
    return flat_paddle_outputs([ref[f"cate{i}"] for i in range(num_levels)],
                               [ref[f"kernel{i}"] for i in range(num_levels)])


@pytest.mark.parametrize("name", RUN_CONFIGS)
def test_heads_match_paddle(references, name):
    exp, model = converted_heads(name, references[name])
    ref = np.load(references[name] / "outputs.npz")
    feats = [torch.from_numpy(ref[f"feat{i}"]) for i in range(5)]
    with torch.no_grad():
        cate_scores, kernels = model.head(feats)
        cate_logits, _ = model.head.forward_levels(feats)
        mask_feats = model.mask_head(feats)
    for level, logits in enumerate(cate_logits):
        np.testing.assert_allclose(logits.numpy(), ref[f"cate_logit{level}"], rtol=0,
                                   atol=OUTPUT_TOL)
    cate, kernel = paddle_levels(ref)
    assert_scores_match(cate_scores.numpy(), cate, cate_logits)
    np.testing.assert_allclose(kernels.numpy(), kernel, rtol=0, atol=OUTPUT_TOL)
    np.testing.assert_allclose(mask_feats.numpy(), ref["seg_pred"], rtol=0, atol=OUTPUT_TOL)
    assert cate_scores.shape == (2, sum(g * g for g in exp.head["num_grids"]), exp.num_classes)
    if exp.head["dcn_v2_stages"]:
        offsets = offset_magnitudes(model, lambda: (model.head(feats), model.mask_head(feats)))
        assert len(offsets) > 0 and offsets.min() > 1.0


def test_r101_head_keys_convert(references):
    """Every tower conv of the R101 config is a DCN: every Paddle key lands on ours."""
    _, model = converted_heads(KEYS_ONLY[0], references[KEYS_ONLY[0]])
    assert all(hasattr(conv.conv, "conv_offset") for conv in model.head.kernel_convs)


@pytest.mark.parametrize("name", RUN_CONFIGS)
def test_postprocess_matches_paddle(references, name):
    exp, model = converted_heads(name, references[name])
    ref = np.load(references[name] / "outputs.npz")
    cate, kernel = paddle_levels(ref)
    head = model.head
    dets = solov2_postprocess(
        torch.from_numpy(cate), torch.from_numpy(kernel), torch.from_numpy(ref["seg_pred"]),
        head.cell_strides(), torch.tensor([s for _, s in IMAGES], dtype=torch.float32),
        torch.tensor([size for size, _ in IMAGES]), torch.tensor(ORIG_SIZES),
        score_threshold=head.score_threshold, mask_threshold=head.mask_threshold,
        mask_nms=head.mask_nms)
    counts = []
    for i, (det, (size, scale), orig) in enumerate(zip(dets, IMAGES, ORIG_SIZES)):
        labels, scores, segm = ref[f"label{i}"], ref[f"score{i}"], ref[f"segm{i}"]
        labels, scores, segm = without_fake(labels, scores, segm)
        np.testing.assert_array_equal(det.labels.numpy(), labels)
        np.testing.assert_allclose(det.scores.numpy(), scores, rtol=0, atol=SCORE_TOL)
        height, width = paddle_orig_size(size, scale)
        assert segm.shape[1:] == (height, width) and det.masks.shape[1:] == orig
        assert det.masks.dtype == torch.bool and not det.masks[:, :, width:].any()
        assert mask_ious(det.masks[:, :height, :width].numpy(), segm).min() >= MIN_MASK_IOU
        counts.append(len(det))
    assert min(counts) >= 50  # meaningful: many instances survive Matrix NMS


@pytest.mark.parametrize("case", range(len(NMS_CASES)))
def test_matrix_nms_matches_paddle(references, case):
    """Paddle's MaskMatrixNMS keeps one extra entry, the last candidate of its pre-NMS order (a
    duplicate or one under the update threshold); without it the outputs are equal."""
    ref = np.load(references["matrix_nms"] / "matrix_nms.npz")
    masks, labels, scores = (torch.from_numpy(ref[f"{k}{case}"]) for k in ("masks", "labels",
                                                                          "scores"))
    count, pre_nms_top_n = NMS_CASES[case]
    kernel = "linear" if case == 2 else "gaussian"
    keep, out_scores = mask_matrix_nms(masks, labels, scores, masks.sum((1, 2)),
                                       pre_nms_top_n=pre_nms_top_n, post_nms_top_n=1000,
                                       kernel=kernel)
    index = list(ref[f"out_index{case}"])
    appended = int(np.argsort(-ref[f"scores{case}"], kind="stable")[min(count, pre_nms_top_n) - 1])
    position = len(index) - 1 - index[::-1].index(appended)
    paddle_scores = np.delete(ref[f"out_scores{case}"], position)
    del index[position]
    assert keep.tolist() == index and 10 < len(index) < min(count, pre_nms_top_n)
    np.testing.assert_allclose(out_scores.numpy(), paddle_scores, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(labels[keep].numpy(), np.delete(ref[f"out_labels{case}"],
                                                                  position))


def test_loss_inputs_match_paddle(references):
    """``SOLOv2Head.loss_inputs`` gives SOLOv2Loss what ppdet's ``get_loss`` gives it."""
    ref = np.load(references["loss_inputs"] / "loss_inputs.npz")
    grids = [ref[f"cate_label{i}"].shape[1] for i in range(5)]
    head = SOLOv2Head(num_classes=3, in_channels=8, seg_feat_channels=32, stacked_convs=1,
                      num_grids=[round(g ** 0.5) for g in grids], kernel_out_channels=8)
    targets = {k: torch.from_numpy(ref[k]) for k in ref if k.startswith(
        ("ins_label", "cate_label", "grid_order", "fg_num"))}
    ins_preds, ins_labels, cate_preds, cate_labels, num_ins = head.loss_inputs(
        [torch.from_numpy(ref[f"cate_pred{i}"]) for i in range(5)],
        [torch.from_numpy(ref[f"kernel_pred{i}"]) for i in range(5)],
        torch.from_numpy(ref["ins_pred"]), targets)
    for level, pred in enumerate(ins_preds):
        key = f"recorded_ins_pred{level}"
        assert (pred is None) == (key not in ref)
        if pred is not None:
            np.testing.assert_allclose(pred.numpy(), ref[key], rtol=0, atol=1e-5)
        assert ins_labels[level] is targets[f"ins_label{level}"]
    np.testing.assert_array_equal(cate_preds.numpy(), ref["recorded_cate_preds"])
    np.testing.assert_array_equal(cate_labels.numpy(), ref["recorded_cate_labels"])
    assert int(num_ins) == int(ref["recorded_num_ins"])

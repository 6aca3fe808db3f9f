"""End-to-end SOLOv2 parity with PaddleDetection 2.6.0: image files -> raw outputs -> instances.

Paddle side (tests/reference/paddle_solov2_e2e.py, in the Paddle environment): ppdet builds the
SOLOv2 of a config in ../shared/paddledet_configs/solov2/ with random weights (non-trivial BN and
GroupNorm statistics, DCN offsets of several pixels, category logits biased so that many cells
are candidates), ``paddle.save`` writes the .pdparams, and every image file goes through the
config's own EvalReader transforms (keep-ratio resize to ``size``) and the model, its
post-processing with Paddle 2's indexing semantics. Our side: ``tools/convert_weights.py`` (the
real CLI, in a subprocess) converts the .pdparams and ``Predictor`` (``tsize`` = ``size``) runs on
the same files. Compared: the normalised input (ppdet resizes the normalised float image, we the
uint8 one, so they differ by rounding up to one uint8 level), and, on Paddle's own input (that
rounding moves a few candidates across the score thresholds of a random net), backbone / neck /
raw category scores / kernels / mask features and the final instances (labels, scores, masks)
of our model's post-processing. Every resized size is a multiple of 32: ppdet's PadBatch and ours
(both 0 after normalisation) pad nothing. The helpers are also used by
benchmarks/parity_all_solov2.py for every config.
"""
import os

import cv2
import numpy as np
import pytest
import torch
from solov2_parity import (
    MAX_TIE_FLIPS,
    MIN_MASK_IOU,
    OUTPUT_TOL,
    SCORE_TOL,
    TIE_TOL,
    flat_paddle_outputs,
    mask_ious,
    offset_magnitudes,
    score_mismatches,
    without_fake,
)
from test_end_to_end_parity import (
    INPUT_TOL,
    assert_sizes_differ,
    convert_weights,
    draw_scene,
    run_two_at_a_time,
)

from mmdet_lite import Predictor
from mmdet_lite.exp import get_exp
from mmdet_lite.models.post_process.solov2_postprocess import paddle_orig_size

from conftest import PADDLE_CONFIGS, REPO_ROOT, run_paddle

REFERENCE = REPO_ROOT / "tests/reference/paddle_solov2_e2e.py"
CI_CONFIGS = ["solov2_r50_fpn_3x_coco", "solov2_r50_enhance_coco"]
CI_SIZE = (256, 416)
# Keep-ratio resized to CI_SIZE they become 256x416, 256x320 and 256x384 (one upscaled).
CI_IMAGE_SIZES = [(512, 832), (384, 480), (192, 288)]
NUM_LEVELS = 5
MIN_INSTANCES = 20
# A flipped stride-4 mask pixel moves a Matrix NMS IoU by ~1 / (mask area) (~2e-4 for the
# measured ~4300-pixel masks) and a decayed score by about as much: at most MAX_TIE_FLIPS
# instances of a label with such a near-tie may differ by more than SCORE_TOL, by at most this.
TIE_SCORE_TOL = 1e-3


def make_images(folder, sizes):
    """Generated image files of the (h, w) ``sizes`` (JPEG and PNG alternating)."""
    rng = np.random.default_rng(0)
    paths = []
    for k, (h, w) in enumerate(sizes):
        path = os.path.join(folder, f"scene{k}.{'png' if k % 2 else 'jpg'}")
        cv2.imwrite(path, draw_scene(rng, h, w))
        paths.append(path)
    return paths


def relative_diff(ours, theirs):
    """max |ours - theirs| / max(1, max |theirs|): absolute for values of order one, relative
    where magnitudes are large."""
    return float(np.abs(ours - theirs).max() / max(1.0, float(np.abs(theirs).max())))


def raw_stats(model, ref, k, orig_size):
    """Our backbone, neck, heads and post-processing on Paddle's input of image ``k`` (original
    size ``orig_size`` (h, w)) vs Paddle's outputs: max differences and the instance stats."""
    x = torch.from_numpy(ref[f"image{k}"])[None]
    offsets = offset_magnitudes(model, lambda: model.forward_features(x))
    with torch.inference_mode():
        backbone = model.backbone(x)
        neck = model.neck(backbone)
        cate_scores, kernels = model.head(neck)
        cate_logits, _ = model.head.forward_levels(neck)
        mask_feats = model.mask_head(neck)
        det = model.postprocess((cate_scores, kernels, mask_feats),
                                torch.from_numpy(ref[f"scale_factor{k}"]),
                                torch.tensor([x.shape[2:]]), torch.tensor([orig_size]))[0]
    cate, kernel = flat_paddle_outputs([ref[f"cate{k}_{lvl}"] for lvl in range(NUM_LEVELS)],
                                       [ref[f"kernel{k}_{lvl}"] for lvl in range(NUM_LEVELS)])
    differ, off_tie = score_mismatches(cate_scores.numpy(), cate, cate_logits)
    return dict(
        backbone=max(relative_diff(o.numpy(), ref[f"backbone{k}_{lvl}"])
                     for lvl, o in enumerate(backbone)),
        neck=max(relative_diff(o.numpy(), ref[f"neck{k}_{lvl}"]) for lvl, o in enumerate(neck)),
        cate_flips=differ, cate_off_tie=off_tie,
        backbone_offsets=float(offsets.min()) if len(offsets) else None,
        kernel=relative_diff(kernels.numpy(), kernel),
        mask_feat=relative_diff(mask_feats.numpy(), ref[f"seg_pred{k}"]),
        **instance_stats(det.labels.numpy(), det.scores.numpy(), det.masks.numpy(), ref, k,
                         mask_tie_labels(model.head, cate_scores[0], kernels[0], mask_feats[0])))


def mask_tie_labels(head, cate_scores, kernels, mask_feats):
    """Labels of the candidates whose stride-4 soft mask has a pixel within ``TIE_TOL`` of the
    mask threshold: float rounding may flip it, which moves the mask's area and its Matrix NMS
    IoUs with the other candidates of its label (decay is per label) by one pixel."""
    cells, labels = torch.nonzero(cate_scores > head.score_threshold, as_tuple=True)
    soft = torch.sigmoid(kernels[cells] @ mask_feats.flatten(1))
    near = ((soft - head.mask_threshold).abs() <= TIE_TOL).any(dim=1)
    return set(labels[near].tolist())


def instance_stats(labels, scores, masks, ref, k, tie_labels):
    """Our instances of image ``k`` (labels (K,), scores (K,), bool masks (K, H, W)) vs Paddle's:
    counts, labels equal, max score difference (``det_score``; ``det_score_off_tie``: of the
    instances whose label is not in ``tie_labels``, see ``mask_tie_labels``; ``det_score_ties``:
    how many instances of those labels differ by more than ``SCORE_TOL``), min mask IoU (over
    Paddle's mask extent, see ``paddle_orig_size``)."""
    theirs = without_fake(ref[f"label{k}"], ref[f"score{k}"], ref[f"segm{k}"])
    stats = dict(num_ours=len(labels), num_paddle=len(theirs[0]), labels_equal=False,
                 det_score=float("inf"), det_score_off_tie=float("inf"), det_score_ties=0,
                 det_score_at_tie=float("inf"), mask_iou=0.0)
    if len(labels) == len(theirs[0]):
        height, width = paddle_orig_size(ref[f"im_shape{k}"][0], ref[f"scale_factor{k}"][0])
        diff = np.abs(scores - theirs[1])
        at_tie = np.isin(labels, sorted(tie_labels))
        stats.update(labels_equal=bool(np.array_equal(labels, theirs[0])),
                     det_score=float(diff.max(initial=0.0)),
                     det_score_off_tie=float(diff[~at_tie].max(initial=0.0)),
                     det_score_ties=int((diff[at_tie] > SCORE_TOL).sum()),
                     det_score_at_tie=float(diff[at_tie].max(initial=0.0)),
                     mask_iou=tie_matched_iou(labels, scores, masks[:, :height, :width],
                                              *theirs))
    return stats


def tie_matched_iou(labels, scores, masks, their_labels, their_scores, their_segm):
    """Min over Paddle's instances of the best mask IoU with one of ours of the same label and a
    score within ``TIE_SCORE_TOL`` (instances of near-equal scores may sort either way; the
    scores themselves are checked by index)."""
    worst = 1.0
    for label, score, segm in zip(their_labels, their_scores, their_segm):
        near = (labels == label) & (np.abs(scores - score) <= TIE_SCORE_TOL)
        if not near.any():
            return 0.0
        worst = min(worst, float(mask_ious(masks[near], np.broadcast_to(segm, masks[near].shape)
                                           ).max()))
    return worst


def run_config(name, work_dir, images, size):
    """Paddle reference, conversion and our Predictor for one config -> per-image stats:
    ``input`` (max |difference| of the normalised inputs from the files), ``file_instances``
    (our / Paddle's instance count from the files, for information: the one-level input
    rounding may move a candidate across a threshold), and ``raw_stats`` on Paddle's input."""
    run_paddle(REFERENCE, PADDLE_CONFIGS / "solov2" / f"{name}.yml", work_dir, *size, *images)
    ref = np.load(os.path.join(work_dir, "outputs.npz"))
    pth = convert_weights(name, os.path.join(work_dir, "model.pdparams"),
                          os.path.join(work_dir, "model.pth"), family="solov2")
    exp_file = REPO_ROOT / "exps/solov2" / f"{name}.py"
    predictor = Predictor(exp_file, pth, device="cpu", conf=get_exp(exp_file).get_score_threshold(),
                          tsize=size)
    # Paddle keeps every instance Matrix NMS leaves above its update threshold, some scoring below
    # the candidate threshold that ``conf`` may not undercut (it would lower it): keep them all.
    predictor.conf = 0.0
    seen = {}
    predictor.model.backbone.register_forward_pre_hook(
        lambda m, i: seen.update(input=i[0][0].clone()))
    stats = []
    for k, path in enumerate(images):
        result = predictor(path)
        input_diff = float(np.abs(seen["input"].numpy() - ref[f"image{k}"]).max())
        file_instances = f"{len(result)}/{int((ref[f'score{k}'] != 0).sum())}"
        stats.append(dict(input=input_diff, file_instances=file_instances,
                          **raw_stats(predictor.model, ref, k, result.masks.shape[1:])))
    return stats


def parity_failures(stats, pixel_std):
    """Human-readable reasons why ``stats`` (from ``run_config``) fail the tolerances."""
    failures = []
    for k, s in enumerate(stats):
        checks = [("input", s["input"] <= 1.0 / 255.0 / min(pixel_std) + INPUT_TOL),
                  ("backbone", s["backbone"] <= OUTPUT_TOL), ("neck", s["neck"] <= OUTPUT_TOL),
                  ("category scores", s["cate_off_tie"] == 0
                   and s["cate_flips"] <= MAX_TIE_FLIPS),
                  ("kernels", s["kernel"] <= OUTPUT_TOL),
                  ("mask features", s["mask_feat"] <= OUTPUT_TOL),
                  ("instance count", s["num_ours"] == s["num_paddle"]),
                  ("labels", s["labels_equal"]), ("scores", s["det_score_off_tie"] <= SCORE_TOL
                                                  and s["det_score_ties"] <= MAX_TIE_FLIPS
                                                  and s["det_score_at_tie"] <= TIE_SCORE_TOL),
                  ("masks", s["mask_iou"] >= MIN_MASK_IOU)]
        failures += [f"image {k}: {what} differ ({s})" for what, ok in checks if not ok]
    return failures


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return make_images(tmp_path_factory.mktemp("solov2_images"), CI_IMAGE_SIZES)


@pytest.fixture(scope="module")
def parity(tmp_path_factory, images):
    """Every CI config, two at a time (each Paddle job runs single-threaded)."""
    return run_two_at_a_time(tmp_path_factory, CI_CONFIGS,
                             lambda name, folder: run_config(name, folder, images, CI_SIZE))


def test_images_differ_in_size(images):
    assert_sizes_differ(images)


@pytest.mark.parametrize("name", CI_CONFIGS)
def test_end_to_end_matches_paddle(parity, name):
    stats = parity[name]
    assert len(stats) == len(CI_IMAGE_SIZES)
    assert all(s["num_paddle"] >= MIN_INSTANCES for s in stats)  # meaningful: many instances
    if name.endswith("enhance_coco"):  # DCNv2 in res3..res5: offsets of several pixels
        assert all(s["backbone_offsets"] > 1.0 for s in stats)
    pixel_std = get_exp(REPO_ROOT / "exps/solov2" / f"{name}.py").pixel_std
    assert not parity_failures(stats, pixel_std), "\n".join(parity_failures(stats, pixel_std))

"""End-to-end parity with PaddleDetection 2.6.0: image files -> raw head outputs -> detections.

Paddle side (tests/reference/paddle_picodet_e2e.py, in the Paddle environment): ppdet builds the
PicoDet of a config in ../shared/paddledet_configs/ with random weights and non-trivial BN
statistics, ``paddle.save`` writes the .pdparams, and every image file goes through the config's
own TestReader transforms and the model. Our side: ``tools/convert_weights.py`` (the real CLI, in
a subprocess) converts the .pdparams, and ``Predictor`` runs on the same files. Compared: the
normalised input, the raw head outputs (scores and boxes before NMS) and the final detections,
both with the config's NMS (every pair passes its 0.025 threshold with random weights, so
keep_top_k = 100 decides) and with a per-image score threshold that decides the count. The
helpers are also used by benchmarks/parity_all_picodet.py for every config.
"""
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import torch

from mmdet_lite import Predictor
from mmdet_lite.exp import get_exp
from mmdet_lite.exp.picodet_base import PicoDetExp

from conftest import PADDLE_CONFIGS, REPO_ROOT, run_paddle

REFERENCE = REPO_ROOT / "tests/reference/paddle_picodet_e2e.py"
CI_CONFIGS = ["picodet_s_416_coco_lcnet", "picodet_l_640_coco_lcnet"]
NUM_CLASSES = 80
INPUT_TOL = 1e-5
# ppdet's OpenCV 4.5.5 and ours (>= 4.11: the oldest for numpy 2) round INTER_CUBIC one level
# apart at ~1e-5 of the pixel values (tests/data/test_transforms.py): the inputs may differ there
# by one uint8 level (1 / 255 / std after normalisation). The raw outputs are compared on
# Paddle's own input, so the model's parity keeps its tolerances.
INPUT_LEVEL_FRACTION = 1e-4
PIXEL_STD = PicoDetExp().pixel_std
SCORE_TOL = 1e-4
# Raw boxes reach ~900 px (border anchors at stride 64), where one float32 ulp is 6.1e-5; the
# measured differences are 1-5 ulps (<= 3.1e-4 px, ~4e-6 in stride units) of rounding in the DFL
# projection and the stride multiplication, so raw boxes get 1e-3 px.
RAW_BOX_TOL = 1e-3
DET_BOX_TOL = 1e-2


def make_images(folder):
    """Three image files of different sizes and formats: the 600x512 JPEG photo from assets/, a
    generated 427x640 JPEG and a generated 333x500 PNG (textured background and filled shapes)."""
    rng = np.random.default_rng(0)
    paths = [str(REPO_ROOT / "assets/grace_hopper.jpg")]
    for name, (h, w) in (("scene.jpg", (427, 640)), ("scene.png", (333, 500))):
        path = os.path.join(folder, name)
        cv2.imwrite(path, draw_scene(rng, h, w))
        paths.append(path)
    return paths


def draw_scene(rng, h, w):
    """A BGR uint8 (h, w, 3) test image: a smooth random background and six filled shapes."""
    noise = rng.integers(0, 256, size=(h // 8, w // 8, 3), dtype=np.uint8)
    image = cv2.resize(noise, (w, h), interpolation=cv2.INTER_LINEAR)
    for _ in range(6):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        size = int(rng.integers(20, min(h, w) // 3))
        if rng.random() < 0.5:
            cv2.circle(image, centre, size, colour, -1)
        else:
            cv2.rectangle(image, centre, (centre[0] + size, centre[1] + size), colour, -1)
    return image


def paddle_reference(name, out_dir, images):
    """Run the Paddle side for config ``name``: writes model.pdparams and outputs.npz."""
    run_paddle(REFERENCE, PADDLE_CONFIGS / "picodet" / f"{name}.yml", out_dir, *images)
    return np.load(os.path.join(out_dir, "outputs.npz"))


def convert_weights(name, pdparams, pth, family="picodet"):
    """``tools/convert_weights.py`` on the Paddle checkpoint, as a user runs it (the exp
    exps/<family>/<name>.py)."""
    cmd = [sys.executable, str(REPO_ROOT / "tools/convert_weights.py"), "-f",
           str(REPO_ROOT / "exps" / family / f"{name}.py"), "-c", str(pdparams), "-oc", str(pth),
           "-nc", str(NUM_CLASSES)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 0, f"convert_weights failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert "unused Paddle keys: none" in proc.stdout, proc.stdout
    assert "model keys not filled: none" in proc.stdout, proc.stdout
    return pth


def _rows(result):
    rows = np.concatenate([result.labels[:, None], result.scores[:, None], result.boxes], 1)
    return rows.astype(np.float64)


def our_outputs(name, pth, images, thresholds, ref):
    """Predictor on every image: per image dict(input (3, H, W) normalised, scores (A, C),
    bboxes (A, 4) of our model on Paddle's input ``ref[f"image{k}"]``, rows (K, 6) [label,
    score, x1, y1, x2, y2], rows_thr: the rows with the NMS score threshold ``thresholds[k]``)."""
    exp_file = REPO_ROOT / "exps/picodet" / f"{name}.py"
    # conf at the NMS score threshold leaves Paddle's NMS settings untouched.
    conf = get_exp(exp_file).get_score_threshold()
    predictor = Predictor(exp_file, pth, device="cpu", conf=conf, clip=False)  # Paddle's: unclipped
    model, seen = predictor.model, {}
    model.backbone.register_forward_pre_hook(lambda m, i: seen.update(input=i[0][0].clone()))
    outputs = []
    for k, (path, threshold) in enumerate(zip(images, thresholds)):
        rows = _rows(predictor(path))
        with torch.inference_mode():
            paddle_input = torch.from_numpy(ref[f"image{k}"]).float()[None]
            raw = model.head(model.forward_features(paddle_input))
        scores, bboxes = (t[0].numpy() for t in raw)
        strict = Predictor(exp_file, pth, device="cpu", conf=threshold, clip=False,
                           head__nms__score_threshold=threshold)
        outputs.append(dict(input=seen["input"].numpy(), scores=scores, bboxes=bboxes, rows=rows,
                            rows_thr=_rows(strict(path))))
    return outputs


def match_detections(ours, theirs):
    """Pair every Paddle row with our closest row of the same label (greedy, in Paddle's order).
    Returns (number of Paddle rows without a same-label partner, max score diff, max box diff)."""
    unmatched, score_diff, box_diff, missing = list(range(len(ours))), 0.0, 0.0, 0
    for row in theirs:
        same = [i for i in unmatched if ours[i, 0] == row[0]]
        if not same:
            missing += 1
            continue
        cost = [np.abs(ours[i, 2:] - row[2:]).max() + abs(ours[i, 1] - row[1]) for i in same]
        best = same[int(np.argmin(cost))]
        unmatched.remove(best)
        score_diff = max(score_diff, abs(ours[best, 1] - row[1]))
        box_diff = max(box_diff, np.abs(ours[best, 2:] - row[2:]).max())
    return missing, score_diff, box_diff


def detection_stats(ours, bbox, bbox_num):
    """Counts, label agreement and max score / box differences of two detection lists."""
    theirs = bbox.astype(np.float64)[: int(bbox_num[0])]
    missing, score_diff, box_diff = match_detections(ours, theirs)
    return dict(num_ours=len(ours), num_paddle=len(theirs),
                labels_equal=bool(np.array_equal(ours[:, 0], theirs[:, 0])) and not missing,
                det_score=float(score_diff), det_box=float(box_diff))


def compare(ref, ours):
    """Per image: max abs differences of the input, raw scores, raw boxes, and ``dets`` /
    ``dets_thr`` (``detection_stats`` with the configured / the strict score threshold)."""
    return [dict(input=float(np.abs(out["input"] - ref[f"image{k}"]).max()),
                 input_off=float((np.abs(out["input"] - ref[f"image{k}"]) > INPUT_TOL).mean()),
                 raw_score=float(np.abs(out["scores"] - ref[f"scores{k}"][0].T).max()),
                 raw_box=float(np.abs(out["bboxes"] - ref[f"bboxes{k}"][0]).max()),
                 dets=detection_stats(out["rows"], ref[f"bbox{k}"], ref[f"bbox_num{k}"]),
                 dets_thr=detection_stats(out["rows_thr"], ref[f"bbox_thr{k}"],
                                          ref[f"bbox_num_thr{k}"]))
            for k, out in enumerate(ours)]


def run_config(name, work_dir, images):
    """Paddle reference, conversion and our Predictor for one config -> per-image stats."""
    ref = paddle_reference(name, work_dir, images)
    pth = convert_weights(name, os.path.join(work_dir, "model.pdparams"),
                          os.path.join(work_dir, "model.pth"))
    thresholds = [float(ref[f"threshold{k}"]) for k in range(len(images))]
    return compare(ref, our_outputs(name, pth, images, thresholds, ref))


def parity_failures(stats):
    """Human-readable reasons why ``stats`` (from ``compare``) fail the tolerances."""
    failures = []
    for k, s in enumerate(stats):
        one_level = 1.0 / 255.0 / min(PIXEL_STD) + INPUT_TOL
        checks = [("input", s["input"] <= one_level and s["input_off"] <= INPUT_LEVEL_FRACTION),
                  ("raw scores", s["raw_score"] <= SCORE_TOL),
                  ("raw boxes", s["raw_box"] <= RAW_BOX_TOL)]
        for key in ("dets", "dets_thr"):
            d = s[key]
            checks += [(f"{key} count", d["num_ours"] == d["num_paddle"]),
                       (f"{key} labels", d["labels_equal"]),
                       (f"{key} scores", d["det_score"] <= SCORE_TOL),
                       (f"{key} boxes", d["det_box"] <= DET_BOX_TOL)]
        failures += [f"image {k}: {what} differ ({s})" for what, ok in checks if not ok]
    return failures


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return make_images(tmp_path_factory.mktemp("e2e_images"))


@pytest.fixture(scope="module")
def parity(tmp_path_factory, images):
    """Every CI config, two at a time (each Paddle job runs single-threaded)."""
    return run_two_at_a_time(tmp_path_factory, CI_CONFIGS,
                             lambda name, folder: run_config(name, folder, images))


def run_two_at_a_time(tmp_path_factory, names, run):
    """``{name: run(name, fresh folder)}``, two names at a time, torch on one thread."""
    torch.set_num_threads(1)
    tmp_path_factory.getbasetemp()  # created once, before the threads ask for it
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(lambda name: (name, run(name, tmp_path_factory.mktemp(name))),
                             names))


def test_images_differ_in_size(images):
    assert_sizes_differ(images)


def assert_sizes_differ(images):
    shapes = {cv2.imread(p).shape[:2] for p in images}
    assert len(shapes) == len(images) >= 2


@pytest.mark.parametrize("name", CI_CONFIGS)
def test_end_to_end_matches_paddle(parity, name):
    stats = parity[name]
    assert len(stats) == 3
    # keep_top_k decides the count in one setting, the score threshold in the other.
    assert all(s["dets"]["num_paddle"] == 100 for s in stats)
    assert all(0 < s["dets_thr"]["num_paddle"] < 100 for s in stats)
    assert not parity_failures(stats), "\n".join(parity_failures(stats))

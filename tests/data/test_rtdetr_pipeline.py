"""RT-DETR's training data pipeline: ppdet parity of the operators, the loader's batches, the model.

ppdet's operators run seeded in the Paddle venv (tests/reference/paddle_rtdetr_transforms.py); ours
run with ``RandomState`` of the same seed and must make the same draws: same crops, offsets, flips,
sizes and interpolations, boxes equal in float32, pixels equal up to the uint8 rounding of ours.
"""
import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance

from mmdet_lite.data.build import build_sample_transforms
from mmdet_lite.data.collate import TrainCollate
from mmdet_lite.data.geometric import BatchRandomResize, RandomCrop, RandomExpand, RandomFlip
from mmdet_lite.data.photometric import PILRandomDistort
from mmdet_lite.data.targets import normalize_boxes_cxcywh
from mmdet_lite.exp import get_exp
from mmdet_lite.exp.rtdetr_base import RTDETRExp
from mmdet_lite.utils.errors import UserError

from conftest import REPO_ROOT, run_paddle

REFERENCE = REPO_ROOT / "tests/reference/paddle_rtdetr_transforms.py"
SEEDS = list(range(12))  # covers all five interpolations
FILL = [123.675, 116.28, 103.53]
RTDETR_TRAIN_SIZES = RTDETRExp().train_sizes  # rtdetr_reader.yml's BatchRandomResize sizes


def make_image(h, w, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], -1)
    return np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


INPUTS = [
    (make_image(60, 80, 0), np.array([[5, 6, 40, 50], [30, 10, 75, 30]], np.float32), [3, 7]),
    (make_image(90, 50, 1), np.array([[10, 20, 45, 80]], np.float32), [1]),
]


@pytest.fixture(scope="module")
def paddle_ref(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rtdetr_transforms")
    arrays = {"seeds": np.array(SEEDS)}
    for i, (image, boxes, labels) in enumerate(INPUTS):
        arrays.update({f"image{i}": image, f"boxes{i}": boxes,
                       f"labels{i}": np.array(labels, np.int32)})
    np.savez(folder / "in.npz", **arrays)
    run_paddle(REFERENCE, folder / "in.npz", folder / "out.npz")
    return dict(np.load(folder / "out.npz"))


def test_sample_and_batch_operators_match_ppdet(paddle_ref):
    sample_ops = [("expand", RandomExpand(fill_value=FILL)), ("crop", RandomCrop(prob=1.0)),
                  ("flip", RandomFlip())]
    resize = BatchRandomResize(RTDETR_TRAIN_SIZES, random_interp=True)
    seen = {"expand": 0, "crop": 0, "flip": 0}
    interps = set()
    for i, (image, boxes, labels) in enumerate(INPUTS):
        for seed in SEEDS:
            case = f"{i}_{seed}"
            sample = dict(image=image.copy(), boxes=boxes.copy(), labels=np.array(labels),
                          image_id=i)
            rng = np.random.RandomState(seed)
            for name, op in sample_ops:
                before = sample["image"].shape
                sample = op(sample, rng)
                theirs = paddle_ref[f"{case}/{name}/image"]
                assert sample["image"].shape == theirs.shape, (case, name)
                assert np.abs(sample["image"] - theirs.astype(np.float64)).max() <= 0.5, \
                    (case, name)
                np.testing.assert_array_equal(sample["boxes"], paddle_ref[f"{case}/{name}/boxes"])
                np.testing.assert_array_equal(sample["labels"], paddle_ref[f"{case}/{name}/labels"])
                changed = sample["image"].shape != before or (name == "flip" and not np.array_equal(
                    sample["boxes"], paddle_ref[f"{case}/crop/boxes"]))
                seen[name] += changed
            size, interp = resize.draw(np.random.RandomState(seed + 1000))
            interps.add(interp)
            assert (size, interp) == ((int(paddle_ref[f"{case}/size"]),) * 2,
                                      int(paddle_ref[f"{case}/interp"]))
            batch = TrainCollate(resize, box_format="cxcywh")(
                [dict(sample, batch_seed=seed + 1000)])
            ours = batch["images"][0].permute(1, 2, 0).numpy().astype(np.int16)
            diff = np.abs(ours - paddle_ref[f"{case}/final/image"].astype(np.int16))
            assert diff.max() <= 1 and diff.mean() < 0.1, (case, interp, diff.max(), diff.mean())
            np.testing.assert_allclose(batch["gt_bboxes"][0].numpy(),
                                       paddle_ref[f"{case}/final/boxes"], rtol=0, atol=1e-6)
    assert all(count >= 2 for count in seen.values()), seen  # every operator acted on some case
    assert len(interps) == 5


def test_normalize_boxes_cxcywh():
    boxes = np.array([[10, 20, 50, 100], [0, 0, 200, 100]], np.float32)
    np.testing.assert_allclose(normalize_boxes_cxcywh(boxes, height=100, width=200),
                               [[0.15, 0.6, 0.2, 0.8], [0.5, 0.5, 1.0, 1.0]], rtol=1e-6)
    assert normalize_boxes_cxcywh(np.zeros((0, 4)), 10, 10).shape == (0, 4)


def _replay_distort(image, seed, distort):
    """ppdet develop's RandomDistort.apply (random_apply=True) written out with PIL and numpy."""
    rng = np.random.RandomState(seed)
    if distort.prob < 1.0 and rng.random_sample() > distort.prob:
        return image
    img = Image.fromarray(image)
    settings = [distort.brightness, distort.contrast, distort.saturation, distort.hue]
    enhancers = [ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color, None]
    for k in rng.permutation(4)[:distort.count]:
        low, high, prob = settings[k]
        if rng.uniform(0.0, 1.0) < prob:
            continue
        delta = rng.uniform(low, high)
        if enhancers[k] is not None:
            img = enhancers[k](img).enhance(delta)
        else:
            hsv = np.array(img.convert("HSV"))
            hsv[:, :, 0] = hsv[:, :, 0] + delta  # ppdet's uint8 assignment (wraps around)
            img = Image.frombytes("HSV", img.size, hsv.tobytes()).convert("RGB")
    return np.asarray(img)


def test_pil_random_distort_is_ppdet_develops():
    image = make_image(48, 64, 3)
    distort = PILRandomDistort(prob=0.8)
    results = []
    for seed in range(12):
        ours = distort(dict(image=image.copy()), np.random.RandomState(seed))["image"]
        assert ours.dtype == np.uint8 and ours.shape == image.shape
        np.testing.assert_array_equal(ours, _replay_distort(image, seed, distort))
        results.append(not np.array_equal(ours, image))
    assert 3 <= sum(results) < 12  # distorted in most draws, untouched in some
    never = PILRandomDistort(prob=0.0)
    assert never(dict(image=image.copy()), np.random.RandomState(0))["image"] is not None
    np.testing.assert_array_equal(
        never(dict(image=image.copy()), np.random.RandomState(0))["image"], image)


def test_hue_shift_wraps_like_a_uint8_assignment():
    image = np.zeros((1, 4, 3), np.uint8)
    image[0] = [[255, 0, 0], [255, 10, 0], [0, 255, 0], [255, 0, 250]]
    hue_only = PILRandomDistort(hue=(-18, -18, 0.0), saturation=(1, 1, 1.0), contrast=(1, 1, 1.0),
                                brightness=(1, 1, 1.0))
    out = hue_only(dict(image=image.copy()), np.random.RandomState(0))["image"]
    hsv = np.array(Image.fromarray(image).convert("HSV"))
    hsv[:, :, 0] = hsv[:, :, 0] + np.float64(-18)
    expected = np.asarray(Image.frombytes("HSV", (4, 1), hsv.tobytes()).convert("RGB"))
    np.testing.assert_array_equal(out, expected)
    assert hsv[0, 0, 0] == 238  # red (hue 0) wrapped to the top of the range


def test_expand_rounds_the_fill_and_shifts_boxes():
    image = np.full((10, 20, 3), 7, np.uint8)
    sample = dict(image=image, boxes=np.array([[1, 2, 5, 6]], np.float32), labels=np.array([0]))
    for seed in range(20):
        out = RandomExpand(prob=0.0, fill_value=FILL)(dict(sample), np.random.RandomState(seed))
        if out["image"].shape != image.shape:
            break
    ys, xs = np.nonzero(out["image"][:, :, 0] == 7)
    assert (ys.min(), xs.min(), ys.max() - ys.min(), xs.max() - xs.min()) == (
        out["boxes"][0, 1] - 2, out["boxes"][0, 0] - 1, 9, 19)
    assert tuple(out["image"][0, 0]) in {(124, 116, 104), (7, 7, 7)}
    assert tuple(out["image"][-1, -1]) in {(124, 116, 104), (7, 7, 7)}


def test_sample_transforms_from_the_exp_config():
    exp = get_exp(REPO_ROOT / "exps/rtdetr/rtdetr_r50vd_6x_coco.py")
    transforms = exp.sample_transforms()
    assert [type(t).__name__ for t in transforms] == ["PILRandomDistort", "RandomExpand",
                                                      "RandomCrop", "RandomFlip"]
    assert transforms[0].prob == 0.8 and transforms[2].prob == 0.8 and transforms[3].prob == 0.5
    assert transforms[1].fill_value == tuple(FILL)
    with pytest.raises(UserError, match=r"GridMask' is not known"):
        build_sample_transforms({"GridMask": {}})
    with pytest.raises(UserError, match=r"train_transforms RandomExpand: .*ratio must be larger"):
        build_sample_transforms({"RandomExpand": {"ratio": 1.0}})


# ---------------------------------------------------------------------------- the loader

@pytest.fixture
def tiny_coco(tmp_path):
    (tmp_path / "imgs").mkdir()
    images, anns = [], []
    sizes = [(120, 160), (100, 90), (80, 80), (150, 120), (90, 140), (70, 100)]
    for i, (h, w) in enumerate(sizes, start=1):
        cv2.imwrite(str(tmp_path / f"imgs/{i}.png"), make_image(h, w, i)[:, :, ::-1])
        images.append(dict(id=i, file_name=f"{i}.png", height=h, width=w))
    boxes = {1: [[10, 10, 60, 50, 0], [70, 40, 50, 60, 0]], 2: [[5, 5, 40, 30, 0]],
             3: [[10, 10, 20, 20, 1]],  # crowd only: skipped in training
             4: [[20, 30, 60, 80, 0]], 5: [[0, 0, 139, 89, 0]]}  # image 6: no annotation
    for image_id, items in boxes.items():
        for x, y, bw, bh, crowd in items:
            anns.append(dict(id=len(anns) + 1, image_id=image_id, category_id=1 + len(anns) % 2,
                             bbox=[x, y, bw, bh], area=bw * bh, iscrowd=crowd))
    cats = [dict(id=1, name="a"), dict(id=2, name="b")]
    (tmp_path / "train.json").write_text(json.dumps(dict(images=images, annotations=anns,
                                                         categories=cats)))
    return tmp_path


def small_exp(tiny_coco, *extra):
    exp = get_exp(REPO_ROOT / "exps/rtdetr/rtdetr_r18vd_6x_coco.py")
    exp.merge(["data_dir", str(tiny_coco), "train_ann", "train.json", "train_image_folder", "imgs",
               "num_classes", "2", "train_sizes", "160,192", *extra])
    return exp


def test_loader_batches_are_normalised_cxcywh(tiny_coco):
    exp = small_exp(tiny_coco)
    loader = exp.get_train_loader(batch_size=2, num_workers=0, seed=3)
    assert len(loader.dataset) == 4 and len(loader) == 2  # crowd-only and empty images skipped
    loader.set_epoch(0)
    batches = list(loader)
    ids = sorted(i for b in batches for i in b["image_ids"])
    assert ids == [1, 2, 4, 5]
    for batch in batches:
        images, boxes, labels, mask = (batch[k] for k in ("images", "gt_bboxes", "gt_labels",
                                                          "pad_gt_mask"))
        assert images.dtype == torch.uint8 and images.shape[:2] == (2, 3)
        assert images.shape[2] == images.shape[3] and images.shape[2] in (160, 192)
        assert boxes.dtype == torch.float32 and boxes.shape[0] == 2 and boxes.shape[2] == 4
        assert labels.shape == mask.shape == (*boxes.shape[:2], 1) and labels.dtype == torch.int64
        real = boxes[mask[..., 0] > 0]
        assert len(real) >= 2 and ((real >= 0) & (real <= 1)).all() and (real[:, 2:] > 0).all()
        cx1 = real[:, 0] - real[:, 2] / 2
        assert (cx1 >= -1e-6).all() and (real[:, 0] + real[:, 2] / 2 <= 1 + 1e-6).all()
    loader.set_epoch(0)
    again = list(loader)
    assert all(torch.equal(a["images"], b["images"]) for a, b in zip(batches, again))


def test_no_usable_image_is_a_clear_error(tiny_coco):
    data = json.loads((tiny_coco / "train.json").read_text())
    for ann in data["annotations"]:
        ann["iscrowd"] = 1
    (tiny_coco / "crowd.json").write_text(json.dumps(data))
    exp = small_exp(tiny_coco, "train_ann", "crowd.json")
    with pytest.raises(UserError, match="no image with ground-truth boxes"):
        exp.get_train_loader(batch_size=2, num_workers=0)
    with pytest.raises(UserError, match="fewer than one batch"):
        small_exp(tiny_coco).get_train_loader(batch_size=8, num_workers=0)


def test_batch_trains_the_rtdetr_model(tiny_coco):
    torch.manual_seed(0)
    exp = small_exp(tiny_coco, "decoder.num_queries", "100", "decoder.num_denoising", "20")
    loader = exp.get_train_loader(batch_size=2, num_workers=0, seed=0)
    loader.set_epoch(0)
    batch = next(iter(loader))
    model = exp.get_model().train()
    targets = {k: v for k, v in batch.items() if k not in ("images", "image_ids")}
    losses = model(batch["images"].float(), dict(targets, epoch_id=0))
    assert torch.isfinite(losses["total_loss"]) and losses["loss_bbox"] > 0
    losses["total_loss"].backward()
    assert model.decoder.dec_score_head[-1].weight.grad.abs().sum() > 0

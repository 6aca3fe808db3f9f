"""Mosaic/MixUp and AugmentHSV: ppdet parity, the ``mosaic_epoch`` switch, NPU exp training.

ppdet's ``DetDataset`` and operators run seeded in the Paddle venv
(tests/reference/paddle_mosaic_transforms.py); ours run through ``TrainDataset`` with the same seed
as ``SampleRandom`` and must pick the same records and make the same draws: identical uint8 images,
same boxes and classes, after Mosaic and after Mosaic + AugmentHSV + RandomFlip.
"""
import cv2
import numpy as np
import pytest
from test_rtdetr_pipeline import make_image

from mmdet_lite.data.geometric import RandomFlip
from mmdet_lite.data.mosaic import Mosaic
from mmdet_lite.data.photometric import AugmentHSV, _hsv_to_rgb
from mmdet_lite.data.synthetic import make_shapes_dataset
from mmdet_lite.data.train_loader import TrainDataset, build_train_loader
from mmdet_lite.exp import get_exp
from mmdet_lite.utils.checkpoint import read_checkpoint

from conftest import REPO_ROOT, run_paddle_npz
from training_helpers import data_opts, logged_losses, train_cli

REFERENCE = REPO_ROOT / "tests/reference/paddle_mosaic_transforms.py"
NPU_EXP = REPO_ROOT / "exps/picodet/picodet_s_416_coco_npu.py"
# (seed, index, epoch, config): config 0 is the NPU exp's, 1 the other branches (see REFERENCE).
# Config 0 builds 8 mosaics: MixUp flipped and not, scaled up (random crop offsets) and down, tiles
# and MixUp images without boxes; its other samples keep widths that are no multiple of 32 (see
# _hsv_to_rgb). In config 1, seeds 106 and 197 make remove_outside_box drop boxes of a tile and of
# the MixUp image.
CASES = ([(s, s % 5, 0, 0) for s in range(14)] + [(s, s % 5, 180, 0) for s in range(14, 18)]
         + [(s, s % 5, 0, 1) for s in [*range(20, 28), 106, 197]])


def _boxes(*rows):
    return np.array(rows, np.float32).reshape(-1, 4)


def _labels(*labels):
    return np.array(labels, np.int32)


# (image RGB, boxes, labels): big, tiny (2x3 px), border-touching boxes; image 3 has none
INPUTS = [
    (make_image(60, 80, 0), _boxes([5, 6, 40, 50], [30, 10, 75, 30], [0, 0, 80, 60]),
     _labels(3, 7, 1)),
    (make_image(90, 50, 1), _boxes([10, 20, 45, 80], [20.5, 30.25, 22.5, 33.25]), _labels(1, 2)),
    (make_image(120, 160, 2), _boxes([100, 2, 158, 118]), _labels(4)),
    (make_image(40, 40, 3), _boxes(), _labels()),
    (make_image(70, 110, 4), _boxes([0, 35, 12, 70], [50, 5, 109, 69], [60, 40, 66, 46]),
     _labels(0, 5, 6)),
]


class ArrayDataset:
    """``INPUTS`` as the ``COCODataset`` interface ``TrainDataset`` reads (BGR images)."""

    def __len__(self):
        return len(INPUTS)

    def load_image(self, i):
        return cv2.cvtColor(INPUTS[i][0], cv2.COLOR_RGB2BGR)

    def get_annotation(self, i):
        return dict(image_id=i, boxes=INPUTS[i][1], labels=np.array(INPUTS[i][2], np.int64))


def our_configs():
    npu = get_exp(NPU_EXP).sample_transforms()
    other = [Mosaic(prob=1.0, input_dim=320, remove_outside_box=True), AugmentHSV(), RandomFlip()]
    return [npu, other]


@pytest.fixture(scope="module")
def paddle_ref(tmp_path_factory):
    arrays = {f"{key}{i}": value for i, sample in enumerate(INPUTS)
              for key, value in zip(("image", "boxes", "labels"), sample)}
    arrays.update({key: np.array(values) for key, values in zip(("seed", "index", "epoch",
                                                                 "config"), zip(*CASES))})
    return run_paddle_npz(REFERENCE, tmp_path_factory.mktemp("mosaic"), arrays)


def test_mosaic_and_hsv_match_ppdet(paddle_ref):
    configs = our_configs()
    assert [type(t) for t in configs[0]] == [Mosaic, AugmentHSV, RandomFlip]
    max_box_diff, mosaics = 0.0, {0: 0, 1: 0}
    for c, (seed, index, epoch, config) in enumerate(CASES):
        for stage, transforms in (("mosaic", configs[config][:1]), ("final", configs[config])):
            ours = TrainDataset(ArrayDataset(), transforms, allow_empty=True,
                                mosaic_epoch=180)[(index, seed, 0, epoch)]
            image = paddle_ref[f"{c}/{stage}/image"]
            assert ours["image"].dtype == np.uint8, (c, stage)
            assert ours["image"].shape == image.shape, (c, stage)
            assert np.array_equal(ours["image"], image), (c, stage)
            boxes = paddle_ref[f"{c}/{stage}/boxes"]
            assert ours["boxes"].dtype == np.float32 and ours["boxes"].shape == boxes.shape
            np.testing.assert_allclose(ours["boxes"], boxes, rtol=0, atol=1e-4)
            max_box_diff = max(max_box_diff, float(np.abs(ours["boxes"] - boxes).max(initial=0)))
            np.testing.assert_array_equal(ours["labels"], paddle_ref[f"{c}/{stage}/labels"])
        mosaics[config] += image.shape[:2] != INPUTS[index][0].shape[:2]
    assert mosaics == {0: 8, 1: 10}, mosaics
    print(f"max |box difference| {max_box_diff:.3g}")


def test_hsv_to_rgb_is_ppdets_opencv_on_every_input(paddle_ref):
    """ppdet's OpenCV (4.5.5) converts a row's last ``w % 32`` pixels with its per-pixel code,
    which rounds differently from its vector code (and, for 172 inputs, from OpenCV 5's)."""
    code = np.arange(180 * 65536, dtype=np.uint32)
    hsv = np.stack([code >> 16, (code >> 8) & 255, code & 255], -1).astype(np.uint8)
    for path, width in (("scalar", 1), ("vector", 1024)):
        ours = _hsv_to_rgb(hsv.reshape(-1, width, 3), is_bgr=False).reshape(-1, 3)
        assert np.array_equal(ours, paddle_ref[f"hsv2rgb/{path}"]), path


def test_mosaic_only_before_mosaic_epoch():
    npu = get_exp(NPU_EXP)
    dataset = TrainDataset(ArrayDataset(), npu.sample_transforms(), allow_empty=True,
                           mosaic_epoch=npu.mosaic_epoch)
    assert npu.mosaic_epoch == 180
    applied = 0
    for seed in range(12):
        index = seed % len(INPUTS)
        rng = np.random.RandomState(seed)
        [rng.randint(len(INPUTS)) for _ in range(4)]  # ppdet's record draws come first
        mosaic = rng.uniform(0, 1) <= 0.6
        shape = dataset[(index, seed, 0, 179)]["image"].shape
        assert shape == ((640, 640, 3) if mosaic else INPUTS[index][0].shape), seed
        applied += mosaic
        plain = dataset[(index, seed, 0, 180)]  # Mosaic sees one sample: a no-op without draws
        expected = dict(image=INPUTS[index][0].copy(), boxes=INPUTS[index][1].copy(),
                        labels=np.array(INPUTS[index][2]))
        rng = np.random.RandomState(seed)
        for transform in (AugmentHSV(is_bgr=False, hgain=5, sgain=30, vgain=30), RandomFlip()):
            expected = transform(expected, rng)
        np.testing.assert_array_equal(plain["image"], expected["image"])
        np.testing.assert_array_equal(plain["boxes"], expected["boxes"])
    assert 0 < applied < 12

    # through the loader: the sampler hands the epoch to the dataset; 0 means always (ppdet)
    transforms = [Mosaic(prob=1.0, input_dim=64), RandomFlip()]
    for mosaic_epoch, mosaic_epochs in ((2, {0, 1}), (0, {0, 1, 2, 3}), (-1, set())):
        loader = build_train_loader(ArrayDataset(), 2, 0, seed=1, sample_transforms=transforms,
                                    mosaic_epoch=mosaic_epoch,
                                    collate_fn=lambda s: [x["image"].shape[:2] for x in s])
        for epoch in range(4):
            loader.set_epoch(epoch)
            shapes = {shape for batch in loader for shape in batch}
            assert (shapes == {(64, 64)}) == (epoch in mosaic_epochs), (mosaic_epoch, epoch)


def test_npu_exp_trains_with_mosaic(tmp_path):
    data = tmp_path / "shapes"
    make_shapes_dataset(data, num_train=4, num_val=1, seed=3, min_size=(96, 128),
                        max_size=(160, 200), empty_prob=0.0)
    log = train_cli(NPU_EXP, tmp_path / "out", "-b", "2", "-w", "0", opts=[
        *data_opts(data, size=96), "num_classes", 5, "max_epoch", 2, "mosaic_epoch", 1,
        "eval_interval", 0, "snapshot_epoch", 1, "print_interval", 1])
    losses = logged_losses(log)
    assert [(e, i) for e, i, _ in losses] == [(1, 1), (1, 2), (2, 1), (2, 2)], log[-2000:]
    assert all(np.isfinite(v) and v > 0 for _, _, v in losses)
    ckpt = read_checkpoint(tmp_path / "out" / NPU_EXP.stem / "latest_ckpt.pth")
    assert ckpt["epoch"] == 2 and ckpt["iteration"] == 4

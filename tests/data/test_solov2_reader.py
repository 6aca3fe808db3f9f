"""SOLOv2's reader: Resize / RandomResize (keep-ratio, per sample) and PadBatch against ppdet 2.6.0.

The four configs of ``solov2_reference.CONFIGS`` run on polygon instances (masks decoded as
``TrainDataset(with_masks=True)`` does) with ppdet's seeded draws: sizes, boxes, labels and masks
are bit-identical; pixels too, but for OpenCV's cubic/Lanczos rounding (see MAX_CUBIC_ROUNDING)
and for the deferred RandomDistort of the enhance config (checked through its colour transform).
"""
import cv2
import numpy as np
import pytest

from mmdet_lite.data.build import build_sample_transforms
from mmdet_lite.data.resize import PadBatch, RandomResize, Resize
from mmdet_lite.data.train_loader import SampleRandom
from mmdet_lite.utils.errors import UserError

from solov2_cases import (
    our_sample,
    solov2_collate,
)

pytest_plugins = ["solov2_cases"]  # the solov2_reference fixture

# ppdet runs OpenCV 4.5.5: ours rounds INTER_CUBIC / LANCZOS4 one level off at a few values
# (tests/data/test_transforms.py measures it); linear, nearest and area stay bit-exact here.
MAX_CUBIC_ROUNDING = 1e-4


def _check_pixels(ours, ref, sample, interp_may_round, as_float):
    if ref.dtype != np.uint8:  # ppdet distorted the colours (no distortion: it stays uint8)
        # ppdet: colour, then the geometry in float; we defer the colour (it is affine, the
        # resize linear: they commute in float) and resize uint8 (rounded by less than 1)
        assert np.abs(ours - as_float).max() < 1.0
        matrix = sample["color_transform"].astype(np.float64)
        coloured = as_float.astype(np.float64) @ matrix[:, :3].T + matrix[:, 3]
        np.testing.assert_allclose(coloured, ref, atol=2e-3)
        return
    if "color_transform" in sample:
        np.testing.assert_array_equal(sample["color_transform"], np.eye(3, 4))
    diff = np.abs(ours.astype(np.int16) - ref)
    if interp_may_round:
        assert diff.max() <= 1 and (diff > 0).mean() <= MAX_CUBIC_ROUNDING
    else:
        assert diff.max() == 0


def test_sample_transforms_match_ppdet(solov2_reference):
    records, cases, ref = solov2_reference
    sizes, distorted = set(), 0
    for c, (index, seed, config) in enumerate(cases):
        sample = our_sample(records[index], seed, config)
        image = sample["image"]
        assert image.dtype == np.uint8 and image.shape == ref[f"s{c}/image"].shape, c
        np.testing.assert_array_equal(sample["boxes"], ref[f"s{c}/boxes"])
        np.testing.assert_array_equal(sample["labels"], ref[f"s{c}/labels"])
        assert sample["masks"].dtype == np.uint8
        np.testing.assert_array_equal(sample["masks"], ref[f"s{c}/masks"])
        # config 2 draws its interpolation: it may be cubic or Lanczos
        as_float = our_sample(records[index], seed, config, np.float32)["image"]
        _check_pixels(image, ref[f"s{c}/image"], sample, config == 2, as_float)
        sizes.add((config, image.shape[:2]))
        distorted += "color_transform" in sample and ref[f"s{c}/image"].dtype != np.uint8
    # RandomFlip is config 0's only draw: both of its outcomes were compared
    flips = [SampleRandom(seed).uniform(0, 1) < 0.5 for _, seed, config in cases if config == 0]
    assert 0 < sum(flips) < len(flips)
    assert distorted >= 4
    assert len({s for conf, s in sizes if conf == 2}) >= 6  # random_range draws
    assert {s for conf, s in sizes if conf == 3} == {(250, 340)}


def test_pad_batch_matches_ppdet(solov2_reference):
    records, cases, ref = solov2_reference
    collate = solov2_collate(keep_full_masks=True)
    for j in range(len(cases) // 2):
        pair = [our_sample(records[cases[c][0]], *cases[c][1:]) for c in (2 * j, 2 * j + 1)]
        unpadded = [s["image"].shape[:2] for s in pair]
        batch = collate(pair)
        height, width = batch["images"].shape[-2:]
        assert height % 32 == 0 and width % 32 == 0
        assert height - 32 < max(h for h, _ in unpadded) <= height
        assert width - 32 < max(w for _, w in unpadded) <= width
        assert batch["input_sizes"].tolist() == [list(s) for s in unpadded]
        for k in range(2):
            expected = ref[f"b{j}/{k}/image"]
            assert batch["images"][k].shape == expected.shape
            h, w = unpadded[k]
            padding = batch["images"][k].clone()
            padding[:, :h, :w] = 0
            assert not padding.any()
            if expected.dtype == np.uint8:  # not colour-distorted
                diff = np.abs(batch["images"][k].numpy().astype(np.int16) - expected)
                rounding = cases[2 * j + k][2] == 2  # a drawn interpolation: maybe cubic
                assert diff.max() <= rounding and (diff > 0).mean() <= MAX_CUBIC_ROUNDING
            masks = batch["gt_masks"][k][batch["pad_gt_mask"][k, :, 0] > 0]
            np.testing.assert_array_equal(masks[:, :h, :w].numpy(),
                                          ref[f"s{2 * j + k}/masks"])
            assert not masks[:, h:].any() and not masks[:, :, w:].any()


def test_resize_scales_and_clips():
    sample = dict(image=np.full((50, 100, 3), 7, np.uint8), labels=np.array([0, 1]),
                  boxes=np.array([[10, 5, 90, 45], [0, 0, 100, 50]], np.float32),
                  masks=np.ones((2, 50, 100), np.uint8))
    out = Resize(80, keep_ratio=True)(dict(sample))  # long side 100 -> 80, short 50 -> 40
    assert out["image"].shape == (40, 80, 3) and out["masks"].shape == (2, 40, 80)
    np.testing.assert_allclose(out["boxes"], [[8, 4, 72, 36], [0, 0, 80, 40]])
    out = Resize([30, 60], keep_ratio=False, interp=cv2.INTER_NEAREST)(dict(sample))
    assert out["image"].shape == (30, 60, 3) and (out["image"] == 7).all()
    np.testing.assert_allclose(out["boxes"], [[6, 3, 54, 27], [0, 0, 60, 30]])


def test_transforms_from_config_and_bad_arguments():
    resize, random_resize = build_sample_transforms(
        {"Resize": dict(target_size=[800, 1333], keep_ratio=True, interp=1),
         "RandomResize": dict(target_size=[[352, 852], [512, 852]], keep_ratio=True, interp=1)})
    assert isinstance(resize, Resize) and resize.target_size == (800, 1333)
    assert isinstance(random_resize, RandomResize)
    assert random_resize.target_size == [(352, 852), (512, 852)]
    with pytest.raises(UserError, match="RandomResize.*target_size"):
        build_sample_transforms({"RandomResize": dict(target_size=640)}, "exps/x.py")
    with pytest.raises(UserError, match="random_range"):
        build_sample_transforms({"RandomResize": dict(target_size=[[1, 2], [3, 4], [5, 6]],
                                                      random_range=True)})
    with pytest.raises(ValueError, match="pad_to_stride"):
        PadBatch(pad_to_stride=-1)


def test_pad_batch_without_stride_pads_to_the_largest():
    samples = [dict(image=np.full((h, w, 3), 9, np.uint8), boxes=np.zeros((0, 4), np.float32),
                    masks=np.zeros((0, h, w), np.uint8)) for h, w in ((30, 41), (35, 20))]
    out = PadBatch()(samples)
    assert [s["image"].shape for s in out] == [(35, 41, 3)] * 2
    assert [s["masks"].shape for s in out] == [(0, 35, 41)] * 2
    assert out[1]["input_size"] == (35, 20) and (out[1]["image"][:, 20:] == 0).all()
    assert (out[0]["image"][:30] == 9).all() and (out[0]["image"][30:] == 0).all()

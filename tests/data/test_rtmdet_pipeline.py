"""RTMDet's training transforms against mmdet 3.3.0's, draw for draw, on a sequence of samples.

Each sample is seeded (ours: ``SampleRandom(seed)``; mmdet: its global RNGs seeded alike) and the
cached transforms keep their caches across the sequence, as in one data-loader worker. Images,
boxes and labels must be mmdet's exactly; masks must follow the boxes.
"""
import numpy as np
import pytest
import torch

from mmdet_lite.data.build import MMDET_TRANSFORM_ALIASES, build_sample_transforms
from mmdet_lite.data.instances import masks_to_boxes
from mmdet_lite.data.train_loader import SampleRandom, TrainDataset

from conftest import REPO_ROOT, run_mmdet

SCRIPT = REPO_ROOT / "tests/reference/mmdet_rtmdet_pipeline.py"
SIZE = 128
STAGE2 = [
    dict(type="RandomResize", scale=(SIZE, SIZE), ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type="RandomCrop", crop_size=(SIZE, SIZE)),
    dict(type="YOLOXHSVRandomAug"),
    dict(type="RandomFlip", prob=0.5),
    dict(type="Pad", size=(SIZE, SIZE), pad_val=dict(img=(114, 114, 114))),
]


def stage1(mosaic, resize_ratio, mixup):
    """RTMDet's stage-1 pipeline at SIZE with the given CachedMosaic / CachedMixUp settings."""
    return [dict(type="CachedMosaic", img_scale=(SIZE, SIZE), pad_val=114.0, **mosaic),
            dict(type="RandomResize", scale=(2 * SIZE, 2 * SIZE), ratio_range=resize_ratio,
                 keep_ratio=True)] + STAGE2[1:] + [
            dict(type="CachedMixUp", img_scale=(SIZE, SIZE), **mixup)]


STAGE1 = stage1(dict(max_cached_images=6, random_pop=True, prob=0.8), (0.1, 2.0),
                # a float pad_val: with a tuple, mmdet's jitter resize runs on int64 (cv2 refuses)
                dict(ratio_range=(0.5, 1.5), max_cached_images=4, random_pop=True, pad_val=114.0,
                     prob=0.7))
TINY_STAGE1 = stage1(  # rtmdet_tiny's settings: no random pop, mixup ratio 1, prob 0.5
    dict(max_cached_images=5, random_pop=False), (0.5, 2.0),
    dict(ratio_range=(1.0, 1.0), max_cached_images=3, random_pop=False, pad_val=(114, 114, 114),
         prob=0.5))

PIPELINES = {"stage1": STAGE1, "tiny": TINY_STAGE1, "stage2": STAGE2}


def ours(pipeline):
    config = {d["type"]: {k: v for k, v in d.items() if k != "type"} for d in pipeline}
    return build_sample_transforms(config, "test", MMDET_TRANSFORM_ALIASES)


def make_samples(count=40, seed=0):
    """Smooth random RGB images of varied sizes with boxes (one without any) and box masks."""
    rng = np.random.RandomState(seed)
    samples = []
    for i in range(count):
        h, w = rng.randint(40, 220, size=2)
        coarse = rng.randint(0, 256, (h // 8 + 2, w // 8 + 2, 3)).astype(np.uint8)
        image = np.ascontiguousarray(
            np.kron(coarse, np.ones((8, 8, 1), np.uint8))[:h, :w])
        n = 0 if i == 3 else rng.randint(1, 6)
        x1, y1 = rng.uniform(0, w - 8, n), rng.uniform(0, h - 8, n)
        boxes = np.stack([x1, y1, np.minimum(x1 + rng.uniform(4, w / 2, n), w),
                          np.minimum(y1 + rng.uniform(4, h / 2, n), h)], 1).astype(np.float32)
        masks = np.zeros((n, h, w), np.uint8)
        for m, (a, b, c, d) in zip(masks, boxes.round().astype(int)):
            m[b:d, a:c] = 1
        samples.append(dict(image=image, boxes=boxes.reshape(-1, 4),
                            labels=rng.randint(0, 3, n).astype(np.int64),
                            is_crowd=np.zeros(n, bool), masks=masks, image_id=i))
    return samples


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rtmdet_pipeline")
    samples = make_samples()
    seeds = [1000 + i for i in range(len(samples))]
    results = {}
    for name, pipeline in PIPELINES.items():
        inputs = [dict(img=s["image"][..., ::-1].copy(), gt_bboxes=s["boxes"],
                       gt_bboxes_labels=s["labels"]) for s in samples]
        torch.save(dict(pipeline=pipeline, samples=inputs, seeds=seeds), folder / f"{name}.pt")
        run_mmdet(SCRIPT, folder / f"{name}.pt", folder / f"{name}_out.pt")
        results[name] = torch.load(folder / f"{name}_out.pt", weights_only=False)["outputs"]
    return samples, seeds, results


@pytest.mark.parametrize("name", list(PIPELINES))
def test_pipeline_matches_mmdet_draw_for_draw(reference, name):
    samples, seeds, results = reference
    transforms = ours(PIPELINES[name])
    dropped = mixed = 0
    for sample, seed, expected in zip(samples, seeds, results[name]):
        sample = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in sample.items()}
        got = TrainDataset._apply(sample, transforms, SampleRandom(seed))
        if expected is None:
            assert got is None
            dropped += 1
            continue
        np.testing.assert_array_equal(got["image"], expected["img"][..., ::-1])
        np.testing.assert_array_equal(got["boxes"], expected["gt_bboxes"])
        np.testing.assert_array_equal(got["labels"], expected["gt_bboxes_labels"])
        assert got["image"].shape == (SIZE, SIZE, 3)
        assert len(got["masks"]) == len(got["boxes"]) == len(got["is_crowd"])
        wide = ((got["boxes"][:, 2] - got["boxes"][:, 0] > 4)
                & (got["boxes"][:, 3] - got["boxes"][:, 1] > 4))
        # nearest-neighbour masks of boxes rounded to pixels, scaled up to ~9x on the way
        np.testing.assert_allclose(masks_to_boxes(got["masks"][wide]), got["boxes"][wide],
                                   atol=6.0)
        mixed += len(got["boxes"]) > 5
    assert dropped < len(samples) // 2
    if name != "stage2":
        assert mixed > 3, "the cached mosaic / mixup must have run"


def test_stage2_switch_and_refetch(reference):
    samples = reference[0]

    class Listing:
        def __len__(self):
            return len(samples)

        def load_image(self, i):
            return samples[i]["image"][..., ::-1].copy()

        def get_annotation(self, i):
            s = samples[i]
            return dict(image_id=i, boxes=s["boxes"], labels=s["labels"], is_crowd=s["is_crowd"])

    dataset = TrainDataset(Listing(), ours(STAGE1), switch_epoch=2, switch_transforms=ours(STAGE2))
    assert len(dataset) == len(samples) - 1  # the image without boxes is skipped
    for key in range(12):
        stage1, stage2 = dataset[(key, key, 0, 1)], dataset[(key, key, 0, 2)]
        assert stage1["image"].shape == stage2["image"].shape == (SIZE, SIZE, 3)
        assert len(stage2["boxes"]) > 0 and len(stage1["boxes"]) > 0  # dropped crops refetched
    # stage 2 is the plain pipeline: the same key gives what the stage-2 transforms give alone
    compared = 0
    for index in range(6):
        alone = TrainDataset._apply(dataset._load(index), ours(STAGE2), SampleRandom(index))
        if alone is not None:  # a dropped crop is refetched: another image
            np.testing.assert_array_equal(dataset[(index, index, 0, 7)]["image"], alone["image"])
            compared += 1
    assert compared >= 3

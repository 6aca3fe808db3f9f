"""Shared inputs of the SOLOv2 reader and target tests, and ppdet's outputs on them.

Four images with polygon instances of every size (so that every scale range of the targets is
hit), two-part polygons, a concentric pair (shared grid cells) and a sub-pixel polygon (an
instance whose mask is empty); the cases of ``tests/reference/paddle_solov2_reader.py`` (its
CONFIGS, mirrored by ``CONFIGS`` here) and our pipeline on them.
"""
import numpy as np
import pytest

from mmdet_lite.data.build import build_sample_transforms
from mmdet_lite.data.collate import TrainCollate
from mmdet_lite.data.instances import segmentation_to_bitmap
from mmdet_lite.data.resize import PadBatch
from mmdet_lite.data.solov2_targets import Gt2Solov2Target
from mmdet_lite.data.train_loader import SampleRandom

from conftest import REPO_ROOT, run_paddle

SCRIPT = REPO_ROOT / "tests/reference/paddle_solov2_reader.py"
NUM_GRIDS = (40, 36, 24, 16, 12)
# SOLOv2's ranges halved: the test images are about half SOLOv2's 800 x 1333 input
SCALE_RANGES = ((1, 48), (24, 96), (48, 192), (96, 384), (192, 1024))
CONFIGS = [
    {"Resize": dict(target_size=[288, 480], keep_ratio=True, interp=1), "RandomFlip": {}},
    {"RandomDistort": dict(defer=True), "RandomCrop": {},
     "RandomResize": dict(target_size=[[224, 416], [256, 416], [288, 416]], keep_ratio=True,
                          interp=1), "RandomFlip": {}},
    {"RandomResize": dict(target_size=[[200, 400], [260, 400]], keep_ratio=True,
                          random_range=True, random_interp=True), "RandomFlip": {}},
    {"Resize": dict(target_size=[250, 340], keep_ratio=False, interp=1),
     "RandomFlip": dict(prob=0.5)},
]
CASES_PER_CONFIG = 8
IMAGE_SIZES = ((200, 300), (240, 320), (300, 260), (180, 400), (160, 240))
# radius / min(h, w) of the instances of each image: every level; the last image has one large
# instance only, so the empty mask is alone in the smallest range (a level without targets)
INSTANCE_SCALES = ((0.03, 0.06, 0.12, 0.2, 0.3, 0.45),) * 4 + ((0.4,),)


def _ellipse(rng, cx, cy, rx, ry):
    angles = np.sort(rng.uniform(0, 2 * np.pi, rng.randint(6, 13)))
    radius = rng.uniform(0.75, 1.0, len(angles))
    return np.stack([cx + rx * radius * np.cos(angles), cy + ry * radius * np.sin(angles)],
                    1).reshape(-1)


def make_records(seed=0):
    """[(image (H, W, 3) uint8 RGB, boxes (n, 4) float32, labels (n,), polygons)], where an
    instance's polygons are a list of flat x y lists (COCO's format)."""
    rng = np.random.RandomState(seed)
    records = []
    for (h, w), scales in zip(IMAGE_SIZES, INSTANCE_SCALES):
        yy, xx = np.mgrid[0:h, 0:w]
        image = np.stack([xx * 200 / w, yy * 200 / h, (xx + yy) % 97 * 2], 2)
        image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
        polys = []
        for scale in scales:
            r = scale * min(h, w)
            cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
            parts = [_ellipse(rng, cx, cy, r * rng.uniform(0.7, 1.3), r)]
            if scale == 0.12:  # a second part beside the first
                parts.append(_ellipse(rng, cx + 1.2 * r, cy, r / 3, r / 3).clip(0, w - 1))
            polys.append(parts)
        labels = list(rng.randint(0, 7, len(polys)))
        if len(scales) > 1:  # a concentric pair of two classes: shared cells
            cx, cy, r = w * 0.6, h * 0.4, 0.1 * min(h, w)
            polys += [[_ellipse(rng, cx, cy, r, r)], [_ellipse(rng, cx, cy, 0.8 * r, 0.9 * r)]]
            labels += [3, 5]
        polys.append([[w / 3 + 0.1, h / 3 + 0.1, w / 3 + 0.3, h / 3 + 0.1, w / 3 + 0.2,
                       h / 3 + 0.3]])  # sub-pixel: an empty mask
        labels.append(6)
        boxes = []
        for parts in polys:
            pts = np.concatenate(parts).reshape(-1, 2)
            x1, y1 = pts.min(0)
            x2, y2 = pts.max(0)
            if x2 - x1 < 1:  # the sub-pixel polygon's box: in the smallest range
                x1, y1, x2, y2 = x1 - 4, y1 - 4, x1 + 4, y1 + 4
            boxes.append([max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)])
        polys = [[p.tolist() if isinstance(p, np.ndarray) else p for p in parts]
                 for parts in polys]
        records.append((image, np.array(boxes, np.float32), np.array(labels), polys))
    return records


def make_cases():
    """``(image index, seed, config)`` per case; cases 2j, 2j + 1 form batch j."""
    cases = []
    for config in range(len(CONFIGS)):
        for k in range(CASES_PER_CONFIG):
            cases.append(((k + 2 * config) % len(IMAGE_SIZES), 1000 * config + k, config))
    return cases


def _paddle_inputs(records, cases):
    arrays = dict(num_grids=np.array(NUM_GRIDS), scale_ranges=np.array(SCALE_RANGES),
                  case_image=np.array([c[0] for c in cases]),
                  case_seed=np.array([c[1] for c in cases]),
                  case_config=np.array([c[2] for c in cases]))
    for i, (image, boxes, labels, polys) in enumerate(records):
        arrays.update({f"image{i}": image, f"boxes{i}": boxes, f"labels{i}": labels,
                       f"coords{i}": np.concatenate([np.ravel(p) for ps in polys for p in ps]),
                       f"part_sizes{i}": np.array([len(p) for ps in polys for p in ps]),
                       f"parts{i}": np.array([len(ps) for ps in polys])})
    return arrays


def our_sample(record, seed, config, image_dtype=np.uint8):
    """Our pipeline on one record: masks decoded as ``TrainDataset(with_masks=True)`` does, then
    the config's transforms with ``SampleRandom(seed)`` (on a float32 copy of the image with
    ``image_dtype=np.float32``: the geometry of ppdet's float pipeline)."""
    image, boxes, labels, polys = record
    h, w = image.shape[:2]
    sample = dict(image=image.astype(image_dtype), boxes=boxes.copy(),
                  labels=labels.astype(np.int64), is_crowd=np.zeros(len(boxes), bool),
                  image_id=0, batch_seed=0,
                  masks=np.stack([segmentation_to_bitmap(p, h, w) for p in polys]))
    rng = SampleRandom(seed)
    for transform in build_sample_transforms(CONFIGS[config], "solov2 test"):
        sample = transform(sample, rng)
    return sample


def solov2_collate(keep_full_masks=False):
    """SOLOv2's batch step: ``PadBatch(32)`` then ``Gt2Solov2Target`` with the test's ranges."""
    return TrainCollate(PadBatch(32), targets=Gt2Solov2Target(
        NUM_GRIDS, SCALE_RANGES, keep_full_masks=keep_full_masks))


@pytest.fixture(scope="session")
def solov2_reference(tmp_path_factory):
    """``(records, cases, ppdet outputs)``; one Paddle run per session."""
    records, cases = make_records(), make_cases()
    path = tmp_path_factory.getbasetemp() / "paddle_solov2_reader.npz"
    if not path.exists():
        inputs = tmp_path_factory.getbasetemp() / "paddle_solov2_reader_in.npz"
        np.savez(inputs, **_paddle_inputs(records, cases))
        run_paddle(SCRIPT, inputs, path)
    with np.load(path) as data:
        return records, cases, dict(data)

"""Paddle-side reference for the SOLOv2 reader and target tests: ppdet 2.6.0's own operators.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_solov2_reader.py IN.npz OUT.npz

``IN.npz`` holds the records ``image<i>`` (H, W, 3) uint8 RGB, ``boxes<i>`` (n, 4) float32,
``labels<i>`` (n,) int32 and the polygons: ``coords<i>`` (all parts' x y values concatenated),
``part_sizes<i>`` (values per part) and ``parts<i>`` (parts per instance); the cases
``case_image``, ``case_seed``, ``case_config`` (equal length, an even count: cases 2j and 2j+1
form batch j and share a config); ``num_grids`` and ``scale_ranges`` of ``Gt2Solov2Target``.

Every case seeds ``np.random.seed(seed); random.seed(seed)`` and runs ``Poly2Mask``, the sample
operators of ``CONFIGS[config]`` and ``Permute``; each batch then runs ``PadBatch(32)`` and
``Gt2Solov2Target``. Writes per case ``c``: ``s<c>/image`` (HWC; uint8 when ppdet's float32 image
is integral, else float32), ``s<c>/boxes``, ``s<c>/labels`` (n,), ``s<c>/masks``; per batch ``j``
and sample ``k``: ``b<j>/<k>/image`` (padded CHW, same dtype rule) and every key
``Gt2Solov2Target`` adds (``ins_label<l>``, ``cate_label<l>``, ``grid_order<l>``, ``fg_num``).
"""
import contextlib
import copy
import io
import random
import sys

import numpy as np

with contextlib.redirect_stdout(io.StringIO()):  # ppdet prints warnings on import
    from ppdet.data.transform.batch_operators import Gt2Solov2Target, PadBatch
    from ppdet.data.transform.operators import (
        Permute,
        Poly2Mask,
        RandomCrop,
        RandomDistort,
        RandomFlip,
        RandomResize,
        Resize,
    )

CONFIGS = [
    # 0: solov2_reader.yml's Resize (keep_ratio, interp 1) and RandomFlip, smaller sizes
    [Resize(target_size=[288, 480], keep_ratio=True, interp=1), RandomFlip()],
    # 1: solov2_light_reader.yml (enhance): RandomDistort, RandomCrop, RandomResize, RandomFlip
    [RandomDistort(), RandomCrop(),
     RandomResize(target_size=[[224, 416], [256, 416], [288, 416]], keep_ratio=True, interp=1),
     RandomFlip()],
    # 2: RandomResize with random_range and random_interp
    [RandomResize(target_size=[[200, 400], [260, 400]], keep_ratio=True, random_range=True,
                  random_interp=True), RandomFlip()],
    # 3: Resize without keep_ratio (sizes not multiples of 32: PadBatch pads)
    [Resize(target_size=[250, 340], keep_ratio=False, interp=1), RandomFlip(prob=0.5)],
]


def _image(image):
    image = np.asarray(image)
    if np.array_equal(image, np.round(image)) and image.min() >= 0 and image.max() <= 255:
        return image.astype(np.uint8)
    return image.astype(np.float32)


def _polygons(data, i):
    coords, sizes, parts = data[f"coords{i}"], data[f"part_sizes{i}"], data[f"parts{i}"]
    flat, start = [], 0
    for size in sizes:
        flat.append(coords[start:start + size].tolist())
        start += size
    polys, start = [], 0
    for count in parts:
        polys.append(flat[start:start + count])
        start += count
    return polys


def _record(data, i):
    image = data[f"image{i}"]
    h, w = image.shape[:2]
    boxes = data[f"boxes{i}"].astype(np.float32)
    return {"image": image.copy(), "im_shape": np.array([h, w], np.float32),
            "scale_factor": np.array([1.0, 1.0], np.float32), "h": float(h), "w": float(w),
            "im_id": np.array([i]), "gt_bbox": boxes.copy(),
            "gt_class": data[f"labels{i}"].reshape(-1, 1).astype(np.int32),
            "is_crowd": np.zeros((len(boxes), 1), np.int32), "gt_poly": _polygons(data, i)}


def main(src, dst):
    data = np.load(src)
    target = Gt2Solov2Target(num_grids=data["num_grids"].tolist(),
                             scale_ranges=data["scale_ranges"].tolist(), coord_sigma=0.2)
    out, samples = {}, []
    for c, (index, seed, config) in enumerate(zip(data["case_image"], data["case_seed"],
                                                  data["case_config"])):
        np.random.seed(int(seed))
        random.seed(int(seed))
        sample = Poly2Mask()(_record(data, int(index)))
        for op in CONFIGS[int(config)]:
            sample = op(sample)
        out[f"s{c}/image"] = _image(sample["image"])
        out[f"s{c}/boxes"] = np.asarray(sample["gt_bbox"], np.float32)
        out[f"s{c}/labels"] = np.asarray(sample["gt_class"]).reshape(-1)
        out[f"s{c}/masks"] = np.asarray(sample["gt_segm"], np.uint8)
        samples.append(Permute()(sample))
    for j in range(len(samples) // 2):
        batch = target(PadBatch(pad_to_stride=32)(copy.deepcopy(samples[2 * j:2 * j + 2])))
        for k, sample in enumerate(batch):
            out[f"b{j}/{k}/image"] = _image(sample["image"])
            for key, value in sample.items():
                if key.startswith(("ins_label", "cate_label", "grid_order", "fg_num")):
                    out[f"b{j}/{k}/{key}"] = np.asarray(value)
    np.savez_compressed(dst, **out)


if __name__ == "__main__":
    main(*sys.argv[1:])

"""SOLOv2's training targets: ppdet's ``Gt2Solov2Target`` batch operator, vectorised in numpy.

Runs in the loader workers as ``TrainCollate``'s ``targets`` step, after ``PadBatch``. Per level
``l`` (grid ``S_l``, scale range ``[lo_l, hi_l]``) an instance whose box has
``lo_l <= sqrt(area) <= hi_l`` and whose mask is not empty claims the grid cells of its centre
region: the cells of the box ``(centre of mass) +- coord_sigma * (box size) / 2``, at most one cell
away from the cell of the mask's centre of mass. Each claimed cell gets the instance's class
(the later instance wins a shared cell) and a copy of its mask at ``1 / sampling_ratio`` scale
(cv2 INTER_LINEAR, as ppdet). Each instance mask is scaled once; only the 1/4-scale uint8 copies
are materialised per cell (ppdet's output layout), no full-resolution mask per cell.
"""
from typing import NamedTuple

import cv2
import numpy as np
import torch

from mmdet_lite.data.instances import resize_masks

__all__ = ["Gt2Solov2Target", "LevelTargets", "SOLOV2_NUM_GRIDS", "SOLOV2_SCALE_RANGES"]

SOLOV2_NUM_GRIDS = (40, 36, 24, 16, 12)
SOLOV2_SCALE_RANGES = ((1, 96), (48, 192), (96, 384), (192, 768), (384, 2048))
_CELL_OFFSETS = np.arange(3)  # the centre region spans at most 3 x 3 cells


class LevelTargets(NamedTuple):
    """One sample's targets at one level (``Gt2Solov2Target.sample_targets``)."""

    mask_rows: np.ndarray
    """(m,) int64: per target, its row of the sample's scaled masks (empty: one zero target)."""
    cate_label: np.ndarray
    """(S * S,) int64: class index + 1 per cell."""
    grid_order: np.ndarray
    """(m,) int32 (or one entry for a zero target): ``sample_id * S * S + cell``."""
    counted: bool
    """Whether ``len(grid_order)`` enters the batch's count ``M_l`` (ppdet's quirk)."""


def _cell_index(coords, size, num_grid):
    """ppdet's ``int((coord / size) // (1. / num_grid))`` on float64 arrays (numpy's floor
    division is Python's algorithm)."""
    return np.floor_divide(coords / size, 1.0 / num_grid).astype(np.int64)


def _centres_of_mass(masks):
    """(n, H, W) masks -> ``(mass (n,) int64, centre_y (n,), centre_x (n,))`` float64.

    Sums of integers are exact in int64, so the quotients equal scipy's ``center_of_mass``.
    """
    rows = masks.sum(axis=2, dtype=np.int64)
    cols = masks.sum(axis=1, dtype=np.int64)
    mass = rows.sum(axis=1)
    safe = np.maximum(mass, 1)
    centre_y = (rows @ np.arange(masks.shape[1], dtype=np.int64)) / safe
    centre_x = (cols @ np.arange(masks.shape[2], dtype=np.int64)) / safe
    return mass, centre_y, centre_x


class Gt2Solov2Target:
    """ppdet ``Gt2Solov2Target`` as ``TrainCollate``'s ``targets`` step.

    ``targets(samples)`` takes padded samples (one image size H x W; ``boxes`` (n, 4) x1y1x2y2
    pixels, ``labels`` (n,), ``masks`` (n, H, W) uint8) and returns numpy arrays with ppdet's keys
    and dtypes, stacked over the batch (B samples), for every level ``l``:

    - ``ins_label{l}`` uint8 (B, M_l, h, w): the target mask of each claimed cell, zero-padded to
      the batch's largest count ``M_l`` (``h, w = int(H / sampling_ratio), int(W / ...)``);
    - ``cate_label{l}`` int64 (B, S_l * S_l): class index + 1 per cell, 0 for background;
    - ``grid_order{l}`` int32 (B, M_l): ``b * S_l * S_l + cell`` of each target (0 padding);

    and ``fg_num`` int64 (B,): the number of distinct claimed cells of each sample. As in ppdet, a
    sample with instances in the level's scale range but no claimed cell contributes one zero
    target (``grid_order`` ``b * S_l * S_l``), and one without any instance in the range
    contributes nothing to ``M_l`` (``M_l`` may be 0).

    ``__call__(samples, batch)`` adds those arrays to ``batch`` as tensors and, unless
    ``keep_full_masks``, drops ``batch["gt_masks"]`` (the targets supersede it).
    """

    def __init__(self, num_grids=SOLOV2_NUM_GRIDS, scale_ranges=SOLOV2_SCALE_RANGES,
                 coord_sigma=0.2, sampling_ratio=4.0, keep_full_masks=False):
        self.num_grids = tuple(int(g) for g in num_grids)
        self.scale_ranges = tuple((lo, hi) for lo, hi in scale_ranges)
        if len(self.num_grids) != len(self.scale_ranges):
            raise ValueError(f"Gt2Solov2Target: {len(self.num_grids)} num_grids but "
                             f"{len(self.scale_ranges)} scale_ranges")
        self.coord_sigma = float(coord_sigma)
        self.sampling_ratio = float(sampling_ratio)
        self.keep_full_masks = keep_full_masks

    def _level(self, level, centres, half_sizes, upsampled_size):
        """Claimed cells of the instances ``centres`` (k, 2) y x at ``level`` ->
        ``(cells (m,), owners (m,))`` in ppdet's order (instance, row, column)."""
        num_grid = self.num_grids[level]
        bounds = []
        for axis in (0, 1):  # y then x
            centre, half, size = centres[:, axis], half_sizes[:, axis], upsampled_size[axis]
            coord = _cell_index(centre, size, num_grid)
            low = np.maximum(np.maximum(_cell_index(centre - half, size, num_grid), 0), coord - 1)
            high = np.minimum(np.minimum(_cell_index(centre + half, size, num_grid),
                                         num_grid - 1), coord + 1)
            bounds.append((low[:, None] + _CELL_OFFSETS, high[:, None]))
        (rows, top_ok), (cols, left_ok) = ((idx, idx <= high) for idx, high in bounds)
        claimed = top_ok[:, :, None] & left_ok[:, None, :]
        cells = rows[:, :, None] * num_grid + cols[:, None, :]
        owners = np.broadcast_to(np.arange(len(centres))[:, None, None], cells.shape)
        return cells[claimed], owners[claimed]

    def sample_targets(self, sample, sample_id):
        """One sample's targets -> ``(levels, scaled_masks, fg_num)``: a ``LevelTargets`` per
        level, the (k, h, w) uint8 target masks of its instances (each scaled once) and the
        number of distinct claimed cells."""
        height, width = sample["image"].shape[:2]
        feat_size = (int(height / self.sampling_ratio), int(width / self.sampling_ratio))
        upsampled_size = (feat_size[0] * 4, feat_size[1] * 4)
        boxes = np.asarray(sample["boxes"], dtype=np.float32).reshape(-1, 4)
        labels = np.asarray(sample["labels"]).reshape(-1).astype(np.int64) + 1
        masks = sample["masks"]
        box_w, box_h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        areas = np.sqrt(box_w * box_h)
        half_sizes = np.stack([0.5 * box_h * self.coord_sigma, 0.5 * box_w * self.coord_sigma], 1)
        hits = [(areas >= lo) & (areas <= hi) for lo, hi in self.scale_ranges]
        mass, centre_y, centre_x = _centres_of_mass(masks)
        used = np.nonzero(np.any(hits, axis=0) & (mass > 0))[0]
        scaled = resize_masks(masks if len(used) == len(masks) else masks[used],
                              1.0 / self.sampling_ratio, 1.0 / self.sampling_ratio, feat_size,
                              interpolation=cv2.INTER_LINEAR)
        scaled_row = np.full(len(boxes), -1, dtype=np.int64)
        scaled_row[used] = np.arange(len(used))
        centres = np.stack([centre_y, centre_x], 1)
        levels, fg_num = [], 0
        for level, hit in enumerate(hits):
            num_cells = self.num_grids[level] ** 2
            cate_label = np.zeros(num_cells, dtype=np.int64)
            chosen = np.nonzero(hit & (mass > 0))[0]
            cells, owners = self._level(level, centres[chosen], half_sizes[chosen],
                                        upsampled_size)
            if len(cells) == 0:  # one zero target, counted if some instance is in range
                levels.append(LevelTargets(np.zeros(0, np.int64), cate_label,
                                           np.full(1, sample_id * num_cells, np.int32),
                                           bool(hit.any())))
                continue
            owners = chosen[owners]
            unique, last = np.unique(cells[::-1], return_index=True)  # the last instance wins
            cate_label[unique] = labels[owners[::-1][last]]
            fg_num += len(unique)
            levels.append(LevelTargets(scaled_row[owners], cate_label,
                                       (sample_id * num_cells + cells).astype(np.int32), True))
        return levels, scaled, fg_num

    def targets(self, samples):
        """Padded samples -> dict of numpy arrays (see the class docstring)."""
        shapes = {s["image"].shape[:2] for s in samples}
        if len(shapes) != 1:
            raise ValueError(f"Gt2Solov2Target needs one image size per batch (PadBatch), got "
                             f"{sorted(shapes)}")
        if not all("masks" in s for s in samples):
            raise ValueError("Gt2Solov2Target needs instance masks in the samples "
                             "(train_with_masks)")
        per_sample = [self.sample_targets(s, i) for i, s in enumerate(samples)]
        out = dict(fg_num=np.array([fg for _, _, fg in per_sample], dtype=np.int64))
        feat_size = per_sample[0][1].shape[1:]
        for level in range(len(self.num_grids)):
            entries = [(levels[level], scaled) for levels, scaled, _ in per_sample]
            count = max((len(t.grid_order) for t, _ in entries if t.counted), default=0)
            ins_label = np.zeros((len(samples), count) + feat_size, dtype=np.uint8)
            grid_order = np.zeros((len(samples), count), dtype=np.int32)
            for b, (targets, scaled) in enumerate(entries):
                grid_order[b, :len(targets.grid_order)] = targets.grid_order[:count]
                rows = targets.mask_rows
                np.take(scaled, rows, axis=0, out=ins_label[b, :len(rows)], mode="clip")
            out[f"ins_label{level}"] = ins_label
            out[f"cate_label{level}"] = np.stack([t.cate_label for t, _ in entries])
            out[f"grid_order{level}"] = grid_order
        return out

    def __call__(self, samples, batch):
        batch.update({k: torch.from_numpy(v) for k, v in self.targets(samples).items()})
        if not self.keep_full_masks:
            batch.pop("gt_masks", None)
        return batch

    def __repr__(self):
        return (f"{type(self).__name__}(num_grids={self.num_grids}, scale_ranges="
                f"{self.scale_ranges}, coord_sigma={self.coord_sigma}, sampling_ratio="
                f"{self.sampling_ratio})")

"""Evaluation data loading: exact sharding over ranks and Paddle-style batch padding."""
import functools
import math

import torch
from torch.utils.data import DataLoader, Subset

__all__ = ["shard_indices", "eval_collate", "build_eval_loader"]


def shard_indices(num_items, rank=0, world_size=1):
    """Indices ``rank, rank + world_size, ...``: every item on exactly one rank, none padded."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid rank {rank} for world_size {world_size}")
    return list(range(rank, num_items, world_size))


def eval_collate(samples, pad_to_stride=32, pad_value=None):
    """Stack dataset items into an eval batch, padding like ppdet's ``PadBatch``.

    Images are padded bottom/right to the largest (H, W) of the batch rounded up to
    ``pad_to_stride``: with zeros (uint8 batches) when ``pad_value`` is None, else with the
    per-channel RGB ``pad_value`` in 0..255 pixels (float32 batches; ``255 * pixel_mean`` is
    Paddle's padding after NormalizeImage, 0 in normalised space). Returns a dict:
        images: uint8 or float32 (N, 3, H, W); scale_factors: float32 (N, 2)
        ``[scale_y, scale_x]``; image_ids: list[int]; orig_sizes: int64 (N, 2) ``(h, w)`` of the
        original images; input_sizes: int64 (N, 2) ``(h, w)`` of each resized image before
        padding.

    Zero pixels differ from Paddle's normalised-space zeros only where padding is needed (none
    for fixed eval sizes that are multiples of 32).
    """
    sizes = [tuple(s["image"].shape[-2:]) for s in samples]
    max_h, max_w = max(h for h, _ in sizes), max(w for _, w in sizes)
    if pad_to_stride > 0:
        max_h = int(math.ceil(max_h / pad_to_stride) * pad_to_stride)
        max_w = int(math.ceil(max_w / pad_to_stride) * pad_to_stride)
    first = samples[0]["image"]
    shape = (len(samples), first.shape[0], max_h, max_w)
    if pad_value is None:
        images = first.new_zeros(shape)
    else:
        images = torch.as_tensor(pad_value, dtype=torch.float32).reshape(1, -1, 1, 1).repeat(
            shape[0], 1, shape[2], shape[3])
    for i, s in enumerate(samples):
        h, w = sizes[i]
        images[i, :, :h, :w] = s["image"]
    return dict(
        images=images,
        scale_factors=torch.stack([torch.as_tensor(s["scale_factor"], dtype=torch.float32)
                                   for s in samples]),
        image_ids=[int(s["image_id"]) for s in samples],
        orig_sizes=torch.stack([torch.as_tensor(s["orig_size"], dtype=torch.int64)
                                for s in samples]),
        input_sizes=torch.tensor(sizes, dtype=torch.int64).reshape(len(samples), 2),
    )


def _init_eval_worker(worker_id):
    """Single-threaded OpenCV in loader workers: with several processes and workers per machine,
    cv2's own thread pool in every worker only oversubscribes the cores."""
    import cv2

    cv2.setNumThreads(0)


def build_eval_loader(dataset, batch_size, num_workers, rank=0, world_size=1, pad_to_stride=32,
                      collate_fn=None):
    """A ``DataLoader`` over this rank's shard ``indices[rank::world_size]`` of ``dataset``.

    No sampler padding: across ranks every image is seen exactly once. Batches are
    ``collate_fn`` dicts (default ``eval_collate`` with ``pad_to_stride``).
    """
    shard = Subset(dataset, shard_indices(len(dataset), rank, world_size))
    return DataLoader(
        shard,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_fn or functools.partial(eval_collate, pad_to_stride=pad_to_stride),
        pin_memory=torch.cuda.is_available(),
        drop_last=False,
        worker_init_fn=_init_eval_worker,
    )

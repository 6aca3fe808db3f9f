"""Training data loading: seeded, sharded, worker-count-independent batches (ppdet TrainReader).

Every random draw is a pure function of ``(seed, epoch, position)``: the batch sampler hands each
dataset item ``(index, sample_seed, batch_seed, epoch)``; the item's crop/flip/colour/mosaic draws
come from ``SampleRandom(sample_seed)`` and the batch's size/interpolation from
``RandomState(batch_seed)`` in the collate function. Batches are therefore identical for any
``num_workers`` and when an epoch is resumed part-way.
"""
import random

import cv2
import numpy as np
import torch
from loguru import logger
from torch.utils.data import DataLoader, Dataset, Sampler

from mmdet_lite.data.collate import TrainCollate
from mmdet_lite.data.geometric import BatchRandomResize
from mmdet_lite.data.instances import segmentation_to_bitmap
from mmdet_lite.data.mosaic import Mosaic
from mmdet_lite.data.photometric import apply_color_transform
from mmdet_lite.utils.errors import UserError

__all__ = ["SampleRandom", "TrainDataset", "TrainBatchSampler", "TrainLoader", "batch_to_device",
           "build_train_loader"]

_SAMPLE_STREAM, _BATCH_STREAM, _SHUFFLE_STREAM = 0, 1, 2
MAX_REFETCH = 1000  # mmengine BaseDataset's max_refetch


class SampleRandom(np.random.RandomState):
    """A sample's random source: ``RandomState(seed)`` plus ``py``, a ``random.Random(seed)``.

    ppdet seeded with ``np.random.seed(seed); random.seed(seed)`` draws the same numbers from its
    two global generators as sample transforms draw from ``rng`` and ``rng.py``.
    """

    def __init__(self, seed):
        super().__init__(seed)
        self.py = random.Random(seed)


def _derive_seed(*words):
    """A uint32 seed from non-negative integers (numpy ``SeedSequence`` mixing)."""
    return int(np.random.SeedSequence([int(w) for w in words]).generate_state(1)[0])


class TrainDataset(Dataset):
    """Training view of a COCO-style dataset: ground-truth filtering and sample transforms.

    Like ppdet's training ``COCODataSet`` (``load_crowd=False``, ``allow_empty=False``), crowd
    instances are dropped and images left without boxes are skipped; ``drop_crowd=False`` keeps
    crowd instances (flagged in ``is_crowd``), ``allow_empty=True`` keeps box-less images.
    ``with_masks`` decodes each instance's ``segmentation`` (polygons or RLE) into a bitmap of
    the image's size at load (ppdet's ``Poly2Mask``); the transforms carry the masks along.

    Item ``key``: ``(index, sample_seed, batch_seed[, epoch])`` (an int ``i``: ``(i, i, 0, 0)``).
    As ppdet's ``DetDataset``, while ``mosaic_epoch == 0 or epoch < mosaic_epoch`` (and a
    ``Mosaic`` is among the transforms) the item is five samples, its own and four drawn with
    ``rng.randint(len(self))``, until the ``Mosaic`` merges them (transforms before it run on each
    of the five). Returns a sample (``mmdet_lite.data.instances``) after the transforms:
    ``image`` (H, W, 3) uint8 RGB, ``boxes`` (n, 4) float32 x1y1x2y2 pixels, ``labels`` (n,)
    int64, ``is_crowd`` (n,) bool, ``masks`` (n, H, W) uint8 with ``with_masks``, ``image_id``,
    ``batch_seed`` and, with a deferred ``RandomDistort``, ``color_transform`` (3, 4) float32.

    Args:
        dataset: provides ``len``, ``load_image(i)`` (BGR uint8) and ``get_annotation(i)`` (dict
            with image_id, boxes, labels, is_crowd and, for ``with_masks``, segmentations),
            e.g. ``COCODataset``.
        transforms: sample transforms called as ``t(sample, rng)`` with a ``SampleRandom``.
        mosaic_epoch: ppdet's ``TrainReader.mosaic_epoch``; -1 (ppdet's default): never.
        switch_epoch, switch_transforms: mmdet's ``PipelineSwitchHook``: from the 0-based epoch
            ``switch_epoch`` on (-1: never) the item goes through ``switch_transforms`` instead.

    A transform may return ``None`` (mmdet's ``RandomCrop`` with no box left): the item is then
    another image drawn with ``rng.randint(len(self))``, as mmengine's ``BaseDataset`` refetches.
    """

    def __init__(self, dataset, transforms, drop_crowd=True, allow_empty=False, mosaic_epoch=-1,
                 with_masks=False, switch_epoch=-1, switch_transforms=(), skip_unreadable=False):
        self.dataset = dataset
        self.skip_unreadable = skip_unreadable
        self.with_masks = with_masks
        self.transforms = list(transforms)
        self.switch_epoch = int(switch_epoch)
        self.switch_transforms = list(switch_transforms or ())
        self.drop_crowd = drop_crowd
        self.allow_empty = allow_empty
        self.mosaic_epoch = int(mosaic_epoch)
        self._has_mosaic = any(isinstance(t, Mosaic) for t in self.transforms)
        self.indices = [i for i in range(len(dataset))
                        if allow_empty or self._instance_mask(dataset.get_annotation(i)).any()]

    def _instance_mask(self, ann):
        crowd = ann.get("is_crowd")
        crowd = np.zeros(len(ann["boxes"]), bool) if crowd is None else np.asarray(crowd, bool)
        crowd = crowd.reshape(-1)
        return ~crowd if self.drop_crowd else np.ones(len(crowd), dtype=bool)

    def __len__(self):
        return len(self.indices)

    def _read(self, index, skipped):
        """``(source index, BGR image)`` of item ``index``; with ``skip_unreadable`` an unreadable
        image is replaced by the next readable item, its error appended to ``skipped``."""
        for step in range(len(self)):
            source_index = self.indices[(index + step) % len(self)]
            try:
                return source_index, self.dataset.load_image(source_index)
            except UserError as err:
                if not self.skip_unreadable:
                    raise
                skipped.append(str(err))
                logger.warning(f"skipped: {err}")
        raise UserError("skip_bad_images: no image of the training set can be read")

    def _load(self, index, skipped=None):
        source_index, image = self._read(index, [] if skipped is None else skipped)
        ann = self.dataset.get_annotation(source_index)
        keep = self._instance_mask(ann)
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        crowd = np.asarray(ann.get("is_crowd", np.zeros(len(keep), bool)), bool).reshape(-1)
        sample = dict(image=image,
                      boxes=np.asarray(ann["boxes"], dtype=np.float32).reshape(-1, 4)[keep],
                      labels=np.asarray(ann["labels"], dtype=np.int64).reshape(-1)[keep],
                      is_crowd=crowd[keep], image_id=int(ann["image_id"]))
        if self.with_masks:
            height, width = image.shape[:2]
            segms = [s for s, k in zip(ann["segmentations"], keep) if k]
            sample["masks"] = np.stack([segmentation_to_bitmap(s, height, width) for s in segms]
                                       ) if segms else np.zeros((0, height, width), np.uint8)
        return sample

    def _transformed(self, index, rng, epoch, skipped):
        """The item ``index`` through the epoch's transforms; ``None`` when a transform drops it
        (unreadable images replaced are appended to ``skipped``)."""
        sample, transforms = self._load(index, skipped), self.transforms
        if 0 <= self.switch_epoch <= epoch:
            return self._apply(sample, self.switch_transforms, rng)
        if self._has_mosaic and (self.mosaic_epoch == 0 or epoch < self.mosaic_epoch):
            others = [rng.randint(len(self)) for _ in range(4)]
            if transforms and isinstance(transforms[0], Mosaic):
                # nothing runs before it: load the other four only when it draws to use them
                if transforms[0].draw_apply(rng):
                    sample = transforms[0].combine(
                        [sample] + [self._load(i, skipped) for i in others], rng.py)
                transforms = transforms[1:]
            else:
                sample = [sample] + [self._load(i, skipped) for i in others]
        return self._apply(sample, transforms, rng)

    @staticmethod
    def _apply(sample, transforms, rng):
        for transform in transforms:
            if isinstance(sample, list) and not isinstance(transform, Mosaic):
                sample = [transform(s, rng) for s in sample]
            else:
                sample = transform(sample, rng)
            if sample is None:
                return None
        return sample

    def __getitem__(self, key):
        index, sample_seed, batch_seed, *rest = (key, key, 0) if np.isscalar(key) else key
        epoch = int(rest[0]) if rest else 0
        rng = SampleRandom(sample_seed)
        skipped = []
        for _ in range(MAX_REFETCH + 1):
            sample = self._transformed(index, rng, epoch, skipped)
            if sample is not None:
                sample["batch_seed"] = int(batch_seed)
                if skipped:
                    sample["skipped"] = skipped
                return sample
            index = int(rng.randint(len(self)))  # mmdet's BaseDataset: another random image
        raise UserError(f"{MAX_REFETCH + 1} images in a row were dropped by the transforms "
                        "(RandomCrop without boxes left): check the annotations and crop_size")


class TrainBatchSampler(Sampler):
    """Shuffled, rank-sharded batches of ``(index, sample_seed, batch_seed, epoch)`` keys.

    Per epoch the order is a permutation seeded by ``(seed, epoch)``, padded by wrapping to a
    multiple of ``world_size`` and dealt out ``rank::world_size`` (as ``DistributedSampler``).
    ``sample_seed`` depends on ``(seed, epoch, global position)``, ``batch_seed`` on
    ``(seed, epoch, rank, batch index)``. Call ``set_epoch`` before each epoch;
    ``set_epoch(e, start_batch=k)`` resumes epoch ``e`` at batch ``k`` with identical batches.
    """

    def __init__(self, num_items, batch_size, seed, rank=0, world_size=1, drop_last=True,
                 shuffle=True):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"invalid rank {rank} for world_size {world_size}")
        self.num_items, self.batch_size = int(num_items), int(batch_size)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.drop_last, self.shuffle = drop_last, shuffle
        self.epoch, self.start_batch = 0, 0
        self.per_rank = -(-self.num_items // self.world_size)

    @property
    def batches_per_epoch(self):
        if self.drop_last:
            return self.per_rank // self.batch_size
        return -(-self.per_rank // self.batch_size)

    def set_epoch(self, epoch, start_batch=0):
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def __len__(self):
        return max(self.batches_per_epoch - self.start_batch, 0)

    def __iter__(self):
        if self.shuffle:
            order_seed = np.random.SeedSequence([self.seed, self.epoch, _SHUFFLE_STREAM])
            order = np.random.default_rng(order_seed).permutation(self.num_items)
        else:
            order = np.arange(self.num_items)
        total = self.per_rank * self.world_size
        order = np.resize(order, total)
        positions = np.arange(self.rank, total, self.world_size)
        for b in range(self.start_batch, self.batches_per_epoch):
            batch_seed = _derive_seed(self.seed, self.epoch, _BATCH_STREAM, self.rank, b)
            batch_pos = positions[b * self.batch_size:(b + 1) * self.batch_size]
            yield [(int(order[p]), _derive_seed(self.seed, self.epoch, _SAMPLE_STREAM, p),
                    batch_seed, self.epoch) for p in batch_pos]


def batch_to_device(batch, device, memory_format=torch.contiguous_format):
    """A ``TrainCollate`` batch on ``device`` -> ``(images, targets)``: ``images`` float
    (B, 3, H, W) 0..255 in ``memory_format`` with the deferred colour transforms applied,
    ``targets`` the other entries (tensors and lists of tensors moved to ``device``)."""
    images = batch["images"].to(device, non_blocking=True).float()
    if "color_transforms" in batch:
        images = apply_color_transform(images, batch["color_transforms"])
    images = images.contiguous(memory_format=memory_format)
    targets = {}
    for key, value in batch.items():
        if key in ("images", "color_transforms"):
            continue
        if torch.is_tensor(value):
            value = value.to(device, non_blocking=True)
        elif isinstance(value, (list, tuple)) and value and torch.is_tensor(value[0]):
            value = [v.to(device, non_blocking=True) for v in value]
        targets[key] = value
    return images, targets


class _WorkerInit:
    """Seeds a worker's global RNGs from ``(seed, epoch, rank, worker_id)``; cv2 single-threaded.

    The transforms draw only from per-sample seeds, so this is a safeguard for code that uses the
    global RNGs (with persistent workers it keeps the first epoch's seeds).
    """

    def __init__(self, seed, rank):
        self.seed, self.rank, self.epoch = int(seed), int(rank), 0

    def __call__(self, worker_id):
        worker_seed = _derive_seed(self.seed, self.epoch, self.rank, worker_id)
        np.random.seed(worker_seed)
        random.seed(worker_seed)
        torch.manual_seed(worker_seed)
        cv2.setNumThreads(0)


class TrainLoader:
    """Per-epoch training loader: iterate it once per epoch after ``set_epoch(epoch)``.

    ``len(loader)`` is the number of batches the next iteration yields;
    ``loader.batches_per_epoch`` the full count. Batches are ``TrainCollate`` dicts.
    """

    def __init__(self, dataloader, batch_sampler, worker_init):
        self.dataloader, self.batch_sampler = dataloader, batch_sampler
        self.worker_init = worker_init
        self.dataset = dataloader.dataset

    @property
    def batches_per_epoch(self):
        return self.batch_sampler.batches_per_epoch

    def set_epoch(self, epoch, start_batch=0):
        self.batch_sampler.set_epoch(epoch, start_batch)
        self.worker_init.epoch = int(epoch)

    def __len__(self):
        return len(self.batch_sampler)

    def __iter__(self):
        return iter(self.dataloader)


def build_train_loader(dataset, batch_size, num_workers, seed, rank=0, world_size=1,
                       drop_last=True, target_sizes=(352, 384, 416, 448, 480), random_size=True,
                       random_interp=True, keep_ratio=False, sample_transforms=(),
                       drop_crowd=True, allow_empty=False, pin_memory=None,
                       persistent_workers=False, collate_fn=None, mosaic_epoch=-1,
                       box_format="xyxy", with_masks=False, switch_epoch=-1,
                       switch_transforms=(), skip_unreadable=False):
    """ppdet's TrainReader as a ``TrainLoader``: sample transforms, then ``TrainCollate``.

    Args:
        dataset: a ``COCODataset``-like dataset (see ``TrainDataset``) or a ``TrainDataset``.
        batch_size: images per batch on this process.
        seed: base seed of every random draw; ``rank``/``world_size`` shard the epoch.
        target_sizes, random_size, random_interp, keep_ratio: ``BatchRandomResize`` settings of
            the default ``TrainCollate`` (unused with ``collate_fn``).
        sample_transforms: per-sample transforms (``mmdet_lite.data.build``), in order.
        drop_crowd, allow_empty: ground-truth filtering (ppdet: True, False).
        mosaic_epoch: epochs with five-sample items for ``Mosaic`` (see ``TrainDataset``).
        switch_epoch, switch_transforms: the stage-2 pipeline (see ``TrainDataset``).
        box_format: ``TrainCollate``'s ``gt_bboxes`` format (``xyxy`` pixels, ``cxcywh`` DETR).
        with_masks: load instance masks (``gt_masks`` in the batches).
        skip_unreadable: replace an unreadable image by the next readable one with a warning
            (the batch's ``skipped`` lists them) instead of stopping with its ``UserError``.
        pin_memory: default ``torch.cuda.is_available()``.
        collate_fn: the batch transforms, called on a list of samples that share ``batch_seed``;
            default ``TrainCollate``.
    """
    if not isinstance(dataset, TrainDataset):
        dataset = TrainDataset(dataset, list(sample_transforms or ()), drop_crowd, allow_empty,
                               mosaic_epoch, with_masks, switch_epoch, switch_transforms,
                               skip_unreadable)
    if len(dataset) == 0:
        source = getattr(dataset.dataset, "ann_path", "train_ann")
        raise UserError(f"the training set {source} has no image with ground-truth boxes "
                        "(crowd and empty boxes are ignored)")
    sampler = TrainBatchSampler(len(dataset), batch_size, seed, rank, world_size, drop_last)
    if sampler.batches_per_epoch == 0:
        raise UserError(f"the training set has {len(dataset)} usable images, fewer than one "
                        f"batch ({batch_size} per process x {world_size} processes); lower the "
                        f"batch size")
    worker_init = _WorkerInit(seed, rank)
    if collate_fn is None:
        collate_fn = TrainCollate(BatchRandomResize(target_sizes, random_size, random_interp,
                                                    keep_ratio), box_format)
    dataloader = DataLoader(
        dataset, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate_fn,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        worker_init_fn=worker_init, persistent_workers=persistent_workers and num_workers > 0)
    return TrainLoader(dataloader, sampler, worker_init)

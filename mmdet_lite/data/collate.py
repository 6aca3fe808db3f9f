"""Training batches: the batch transforms of ppdet's readers, then stacking into tensors."""
import numpy as np
import torch

from mmdet_lite.data.targets import normalize_boxes_cxcywh, pad_gt

__all__ = ["TrainCollate", "BOX_FORMATS"]

BOX_FORMATS = ("xyxy", "cxcywh")
"""``xyxy``: pixels of the resized image (PicoDet); ``cxcywh``: normalised to it (DETR)."""


class TrainCollate:
    """The batch step, the targets (``PadGT``, optionally DETR's box encoding) and stacking.

    ``batch_resize`` is the batch step: ``BatchRandomResize`` (one drawn size per batch) or
    ``PadBatch`` (SOLOv2: keep each image's size, pad to one). Its parameters are drawn with
    ``batch_resize.draw(RandomState(batch_seed))`` of the first sample, then applied as
    ``batch_resize(samples, *params)``.

    Returns a dict: ``images`` uint8 (B, 3, S_h, S_w) RGB; ``gt_bboxes`` float32 (B, n, 4)
    (``box_format`` ``xyxy``: x1y1x2y2 resized pixels; ``cxcywh``: ppdet's ``NormalizeBox`` +
    ``BboxXYXY2XYWH``); ``gt_labels`` int64 (B, n, 1); ``pad_gt_mask`` float32 (B, n, 1);
    ``gt_masks`` uint8 (B, n, S_h, S_w) when the samples carry masks; ``image_ids`` list[int];
    ``color_transforms`` float32 (B, 3, 4) when ``RandomDistort`` is deferred (apply with
    ``apply_color_transform`` on the device); ``input_sizes`` int64 (B, 2), each image's (h, w)
    before padding, after ``PadBatch``; ``skipped``, the errors of unreadable images replaced
    (``TrainDataset(skip_unreadable=True)``), when there were any. ``n`` is the batch's
    largest count.

    ``targets``: optional family targets, called last as ``targets(samples, batch)`` on the
    padded samples; it adds its entries to ``batch`` (``Gt2Solov2Target``).
    """

    def __init__(self, batch_resize, box_format="xyxy", targets=None):
        if box_format not in BOX_FORMATS:
            raise ValueError(f"box_format must be one of {BOX_FORMATS}, got {box_format!r}")
        self.batch_resize = batch_resize
        self.box_format = box_format
        self.targets = targets

    def __call__(self, samples):
        params = self.batch_resize.draw(np.random.RandomState(samples[0]["batch_seed"]))
        samples = self.batch_resize(samples, *params)
        if self.box_format == "cxcywh":
            for s in samples:
                s["boxes"] = normalize_boxes_cxcywh(s["boxes"], *s["image"].shape[:2])
        images = np.stack([s["image"] for s in samples]).transpose(0, 3, 1, 2)
        batch = dict(images=torch.from_numpy(np.ascontiguousarray(images)))
        batch.update({k: torch.from_numpy(v) for k, v in pad_gt(samples).items()})
        batch["image_ids"] = [int(s["image_id"]) for s in samples]
        skipped = [error for s in samples for error in s.get("skipped", ())]
        if skipped:
            batch["skipped"] = skipped
        if any("color_transform" in s for s in samples):
            identity = np.eye(3, 4, dtype=np.float32)
            batch["color_transforms"] = torch.from_numpy(
                np.stack([s.get("color_transform", identity) for s in samples]))
        if all("input_size" in s for s in samples):
            batch["input_sizes"] = torch.tensor([s["input_size"] for s in samples],
                                                dtype=torch.int64).reshape(len(samples), 2)
        if self.targets is not None:
            self.targets(samples, batch)
        return batch

    def __repr__(self):
        targets = "" if self.targets is None else f", targets={self.targets!r}"
        return (f"{type(self).__name__}({self.batch_resize!r}, box_format={self.box_format!r}"
                f"{targets})")

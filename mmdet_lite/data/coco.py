"""COCO-format detection dataset (images + pycocotools ground truth)."""
import contextlib
import io
import json
import os

import numpy as np
import torch
from loguru import logger
from pycocotools.coco import COCO

from mmdet_lite.data.image_io import read_image
from mmdet_lite.utils.errors import UserError

__all__ = ["COCODataset", "load_coco_json", "coco_from_dict"]


def load_coco_json(path):
    """Load and sanity-check a COCO annotation file; return the parsed dict.

    Raises ``UserError`` naming the file when it is missing, not JSON, or lacks
    ``images`` / ``categories``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"annotation file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"annotation file {path} is not valid JSON: {err}") from err
    except OSError as err:
        raise UserError(f"cannot read annotation file {path}: {err.strerror}") from err
    if not isinstance(data, dict):
        raise UserError(f"annotation file {path} is not a COCO annotation "
                        "(top level is not an object)")
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise UserError(f"annotation file {path} has no '{key}' list")
    for cat in data["categories"]:
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise UserError(f"annotation file {path}: every category needs an 'id' and a 'name'")
    cat_ids = {cat["id"] for cat in data["categories"]}
    image_ids = set()
    for img in data["images"]:
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise UserError(f"annotation file {path}: every image needs an 'id' and a 'file_name'")
        if img["id"] in image_ids:
            raise UserError(f"annotation file {path}: image id {img['id']} is used by more than "
                            f"one image (another is {img['file_name']}); image ids must be unique")
        image_ids.add(img["id"])
    for ann in data.get("annotations", []):
        if ann.get("category_id") not in cat_ids:
            raise UserError(f"annotation file {path}: annotation {ann.get('id')} has category_id "
                            f"{ann.get('category_id')}, which is not in 'categories'")
    return data


def coco_from_dict(data):
    """Build a pycocotools ``COCO`` index from an annotation dict without its console chatter."""
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _degenerate(ann):
    """A box with no area (ppdet skips these): non-positive width, height or ``area``."""
    bbox = ann.get("bbox")
    if ann.get("ignore", False) or not bbox or not any(bbox):
        return False
    _, _, bw, bh = (float(v) for v in bbox)
    return ann.get("area", bw * bh) <= 0 or bw <= 1e-5 or bh <= 1e-5


def _clean_instances(anns, cat_id_to_label):
    """Instances -> (boxes xyxy float32 (n, 4), labels int64 (n,), is_crowd bool (n,), segms).

    Mirrors ppdet's COCODataSet: instances flagged ``ignore``, without a box, or with a
    degenerate box / non-positive area are skipped; coordinates are rounded to 3 decimals.
    """
    boxes, labels, crowd, segms = [], [], [], []
    for ann in anns:
        bbox = ann.get("bbox")
        if ann.get("ignore", False) or not bbox or not any(bbox) or _degenerate(ann):
            continue
        x1, y1, bw, bh = (float(v) for v in bbox)
        x2, y2 = x1 + bw, y1 + bh
        boxes.append([round(x1, 3), round(y1, 3), round(x2, 3), round(y2, 3)])
        labels.append(cat_id_to_label[ann["category_id"]])
        crowd.append(bool(ann.get("iscrowd", 0)))
        segms.append(ann.get("segmentation"))
    return (np.asarray(boxes, dtype=np.float32).reshape(-1, 4), np.asarray(labels, dtype=np.int64),
            np.asarray(crowd, dtype=bool), segms)


class COCODataset(torch.utils.data.Dataset):
    """A COCO-format dataset: every image listed in the annotation file, sorted by id.

    Categories sorted by id map to contiguous labels ``0..C-1`` (``class_ids[label]`` is the
    COCO category id). Images without annotations are kept (they count in COCO evaluation).

    Item (a dict):
        image: uint8 tensor (3, H', W') RGB, after ``transform`` (original size if None).
        scale_factor: float32 tensor (2,) ``[scale_y, scale_x]`` = resized / original.
        image_id: int COCO image id.
        orig_size: int64 tensor (2,) ``(h, w)`` of the decoded image.
        boxes: float32 tensor (n, 4) x1y1x2y2 in original pixels.
        labels: int64 tensor (n,) contiguous class indices.
        is_crowd: bool tensor (n,).

    Args:
        data_dir: dataset root; ``ann_file`` and ``image_folder`` are relative to it (or absolute).
        ann_file: COCO annotation JSON.
        image_folder: folder holding the images named by ``file_name``.
        transform: callable BGR uint8 (H, W, 3) -> (uint8 (3, H', W'), float32 (2,) scale factor),
            e.g. ``TestTransform``.
    """

    def __init__(self, data_dir, ann_file, image_folder, transform=None):
        data_dir = os.fspath(data_dir) if data_dir is not None else ""
        self.ann_file = os.fspath(ann_file)
        self.ann_path = os.path.join(data_dir, self.ann_file)
        self.image_dir = os.path.join(data_dir, os.fspath(image_folder or ""))
        self.transform = transform
        self._setup(load_coco_json(self.ann_path))

    def _setup(self, coco_dict):
        self.coco = coco_from_dict(coco_dict)
        cats = sorted(self.coco.dataset["categories"], key=lambda c: c["id"])
        self.class_ids = [int(c["id"]) for c in cats]
        self.class_names = [str(c["name"]) for c in cats]
        self.cat_id_to_label = {cid: i for i, cid in enumerate(self.class_ids)}

        self.image_ids = sorted(self.coco.getImgIds())
        self._records = [self._make_record(img_id) for img_id in self.image_ids]
        degenerate = [a for a in self.coco.dataset.get("annotations", []) if _degenerate(a)]
        if degenerate:
            first = degenerate[0]
            logger.warning(f"{self.ann_path}: {len(degenerate)} annotation(s) with an empty or "
                           f"negative box are ignored, as PaddleDetection does (the first: id "
                           f"{first.get('id')}, bbox {first.get('bbox')})")
        missing = [r["path"] for r in self._records if not os.path.isfile(r["path"])]
        if missing:
            raise UserError(f"image file not found: {missing[0]} ({len(missing)} of "
                            f"{len(self._records)} images listed in {self.ann_path} are missing)")

    @property
    def num_classes(self):
        return len(self.class_ids)

    def _make_record(self, img_id):
        info = self.coco.imgs[img_id]
        anns = self.coco.imgToAnns.get(img_id, [])
        boxes, labels, crowd, segms = _clean_instances(anns, self.cat_id_to_label)
        return dict(image_id=int(img_id), path=os.path.join(self.image_dir, info["file_name"]),
                    boxes=boxes, labels=labels, is_crowd=crowd, segmentations=segms)

    def check_num_classes(self, num_classes):
        """Raise ``UserError`` when the annotation's category count differs from ``num_classes``."""
        if int(num_classes) != self.num_classes:
            raise UserError(f"{self.ann_file} has {self.num_classes} categories but num_classes is "
                            f"{num_classes}; pass num_classes {self.num_classes}")

    def __len__(self):
        return len(self._records)

    def load_image(self, index):
        """The image of item ``index`` as BGR uint8 (H, W, 3)."""
        return read_image(self._records[index]["path"])

    def get_annotation(self, index):
        """Ground truth of item ``index``: dict(image_id, path, boxes, labels, is_crowd,
        segmentations) with numpy arrays (boxes xyxy float32 original pixels); a copy."""
        return {k: v.copy() if isinstance(v, (np.ndarray, list)) else v
                for k, v in self._records[index].items()}

    def __getitem__(self, index):
        rec = self._records[index]
        bgr = self.load_image(index)
        orig_h, orig_w = bgr.shape[:2]
        if self.transform is not None:
            image, scale_factor = self.transform(bgr)
        else:
            image = np.ascontiguousarray(bgr[:, :, ::-1].transpose(2, 0, 1))
            scale_factor = np.ones(2, dtype=np.float32)
        return dict(
            image=torch.from_numpy(image),
            scale_factor=torch.as_tensor(scale_factor, dtype=torch.float32),
            image_id=rec["image_id"],
            orig_size=torch.tensor([orig_h, orig_w], dtype=torch.int64),
            boxes=torch.from_numpy(rec["boxes"].copy()),
            labels=torch.from_numpy(rec["labels"].copy()),
            is_crowd=torch.from_numpy(rec["is_crowd"].copy()),
        )

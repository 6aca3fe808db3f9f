"""Pascal VOC (VOCdevkit layout) reader and VOC -> COCO conversion.

Layout read: ``<voc_root>/ImageSets/Main/<split>.txt`` (one image stem per line),
``<voc_root>/Annotations/<stem>.xml`` and ``<voc_root>/JPEGImages/<file>``.

Conversion follows PaddleDetection's ``tools/x2coco.py`` (VOC branch): category ids are
``1..C`` in label-list order, ``bbox = [xmin, ymin, xmax - xmin, ymax - ymin]`` from the XML
values as they are, ``iscrowd = 0`` for every object. The VOC ``difficult`` flag is kept as
``"difficult"`` and as ``"ignore"``: pycocotools (and faster-coco-eval) give ``iscrowd``
precedence over ``ignore``, so COCO evaluation counts difficult objects as ordinary ground
truth (as Paddle's x2coco output does), while ``COCODataset`` skips ``ignore`` instances when it
builds training targets (as ppdet's COCODataSet does). Image ids are ``1..N`` in split order and
``file_name`` is relative to ``JPEGImages``.
"""
import os
import xml.etree.ElementTree as ET

import numpy as np
import torch
from loguru import logger

from mmdet_lite.data.coco import COCODataset
from mmdet_lite.data.image_io import read_image
from mmdet_lite.utils.errors import UserError
from mmdet_lite.utils.fileio import ensure_writable_dir, write_json_atomic

__all__ = ["VOC_CLASSES", "VOCDataset", "voc_to_coco", "voc_to_coco_dict", "read_label_list"]

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


def read_label_list(path):
    """Class names from a ``label_list.txt`` (one name a line, blank lines ignored)."""
    if not os.path.isfile(path):
        raise UserError(f"label list not found: {path}")
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise UserError(f"label list {path} is empty")
    if len(set(names)) != len(names):
        raise UserError(f"label list {path} names a class twice")
    return names


def _text(node, tag, xml_path):
    child = node.find(tag)
    if child is None or child.text is None:
        raise UserError(f"{xml_path}: <{tag}> is missing")
    return child.text.strip()


def _parse_xml(xml_path):
    """-> dict(filename, width, height, objects=[(name, difficult, [xmin, ymin, xmax, ymax])])."""
    if not os.path.isfile(xml_path):
        raise UserError(f"VOC annotation file not found: {xml_path}")
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as err:
        raise UserError(f"VOC annotation file {xml_path} is not valid XML: {err}") from err
    size = root.find("size")
    width = int(float(_text(size, "width", xml_path))) if size is not None else 0
    height = int(float(_text(size, "height", xml_path))) if size is not None else 0
    objects = []
    for obj in root.findall("object"):
        name = _text(obj, "name", xml_path)
        difficult = obj.find("difficult")
        difficult = int(difficult.text) if difficult is not None and difficult.text else 0
        box = obj.find("bndbox")
        if box is None:
            raise UserError(f"{xml_path}: object '{name}' has no <bndbox>")
        coords = [float(_text(box, tag, xml_path)) for tag in ("xmin", "ymin", "xmax", "ymax")]
        objects.append((name, bool(difficult), coords))
    filename = root.findtext("filename")
    return dict(filename=filename.strip() if filename else None, width=width, height=height,
                objects=objects)


def _find_image(image_dir, stem, xml_filename):
    names = ([xml_filename] if xml_filename else []) + [stem + ext for ext in _IMAGE_EXTS]
    for name in names:
        if os.path.isfile(os.path.join(image_dir, name)):
            return name
    raise UserError(f"image file not found: {os.path.join(image_dir, stem + '.jpg')}")


def _image_size(path):
    h, w = read_image(path).shape[:2]
    return w, h


def voc_to_coco_dict(voc_root, split, label_list=None):
    """Read a VOC split and return a COCO annotation dict (see the module docstring)."""
    voc_root = os.fspath(voc_root)
    split_file = os.path.join(voc_root, "ImageSets", "Main", f"{split}.txt")
    if not os.path.isfile(split_file):
        raise UserError(f"VOC split file not found: {split_file}")
    if label_list is not None:
        names = read_label_list(os.path.join(voc_root, os.fspath(label_list)))
    else:
        names = list(VOC_CLASSES)
    name_to_id = {name: i + 1 for i, name in enumerate(names)}
    image_dir = os.path.join(voc_root, "JPEGImages")
    with open(split_file, encoding="utf-8") as f:
        stems = [line.split()[0] for line in f if line.strip()]
    if not stems:
        raise UserError(f"VOC split file {split_file} lists no images")

    images, annotations = [], []
    for img_id, stem in enumerate(stems, start=1):
        xml_path = os.path.join(voc_root, "Annotations", f"{stem}.xml")
        info = _parse_xml(xml_path)
        file_name = _find_image(image_dir, stem, info["filename"])
        width, height = info["width"], info["height"]
        if width <= 0 or height <= 0:
            width, height = _image_size(os.path.join(image_dir, file_name))
        images.append(dict(id=img_id, file_name=file_name, width=width, height=height))
        for name, difficult, (x1, y1, x2, y2) in info["objects"]:
            if name not in name_to_id:
                raise UserError(f"{xml_path}: class '{name}' is not in the label list "
                                f"({label_list or 'the 20 VOC classes'})")
            if x2 <= x1 or y2 <= y1:
                logger.warning(f"{xml_path}: skipping degenerate box "
                               f"{[x1, y1, x2, y2]} of '{name}'")
                continue
            w, h = x2 - x1, y2 - y1
            annotations.append(dict(id=len(annotations) + 1, image_id=img_id,
                                    category_id=name_to_id[name], bbox=[x1, y1, w, h], area=w * h,
                                    iscrowd=0, ignore=int(difficult), difficult=int(difficult)))
    categories = [dict(id=i + 1, name=name, supercategory="none") for i, name in enumerate(names)]
    return dict(images=images, annotations=annotations, categories=categories)


def voc_to_coco(voc_root, split, out_json, label_list=None):
    """Convert a VOC split to a COCO JSON file at ``out_json`` (written atomically).

    Returns the COCO dict. Raises ``UserError`` for missing/invalid inputs or an unwritable
    output path.
    """
    data = voc_to_coco_dict(voc_root, split, label_list)
    out_json = os.fspath(out_json)
    ensure_writable_dir(os.path.dirname(os.path.abspath(out_json)))
    write_json_atomic(data, out_json)
    return data


class VOCDataset(COCODataset):
    """Pascal VOC read straight from a VOCdevkit folder; same items as ``COCODataset`` plus
    ``difficult`` (bool tensor (n,)).

    ``coco`` holds the split converted in memory by ``voc_to_coco_dict`` (so ``COCOEvaluator``
    works on it); labels are the label-list order, ``class_ids`` are ``1..C``. Training boxes
    follow ppdet's VOCDataSet: clipped to ``[0, w - 1] x [0, h - 1]``, difficult objects kept and
    flagged.

    Args:
        voc_root: e.g. ``VOCdevkit/VOC2007``.
        split: a name in ``ImageSets/Main`` (``trainval``, ``test``, ...).
        transform: as in ``COCODataset``.
        label_list: optional ``label_list.txt`` (relative to ``voc_root`` or absolute); default
            the 20 VOC classes.
    """

    def __init__(self, voc_root, split, transform=None, label_list=None):
        self.voc_root = os.fspath(voc_root)
        self.split = split
        self.ann_file = os.path.join(self.voc_root, "ImageSets", "Main", f"{split}.txt")
        self.ann_path = self.ann_file
        self.image_dir = os.path.join(self.voc_root, "JPEGImages")
        self.transform = transform
        self._setup(voc_to_coco_dict(self.voc_root, split, label_list))

    def _make_record(self, img_id):
        info = self.coco.imgs[img_id]
        w, h = float(info["width"]), float(info["height"])
        boxes, labels, difficult = [], [], []
        for ann in self.coco.imgToAnns.get(img_id, []):
            x1, y1, bw, bh = ann["bbox"]
            x1, y1 = max(0.0, x1), max(0.0, y1)
            x2, y2 = min(w - 1, ann["bbox"][0] + bw), min(h - 1, ann["bbox"][1] + bh)
            if x2 > x1 and y2 > y1:
                boxes.append([x1, y1, x2, y2])
                labels.append(self.cat_id_to_label[ann["category_id"]])
                difficult.append(bool(ann["difficult"]))
        n = len(boxes)
        return dict(image_id=int(img_id), path=os.path.join(self.image_dir, info["file_name"]),
                    boxes=np.asarray(boxes, dtype=np.float32).reshape(n, 4),
                    labels=np.asarray(labels, dtype=np.int64), is_crowd=np.zeros(n, dtype=bool),
                    difficult=np.asarray(difficult, dtype=bool), segmentations=[None] * n)

    def __getitem__(self, index):
        item = super().__getitem__(index)
        item["difficult"] = torch.from_numpy(self._records[index]["difficult"].copy())
        return item

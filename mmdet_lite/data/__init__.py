"""Data by concern: reading (``coco``, ``voc``, ``image_io``, ``synthetic``), the sample and its
instances (``instances``), ``geometric`` / ``resize`` / ``photometric`` / ``mosaic`` transforms
and their registry (``build``), batching and targets (``collate``, ``targets``, SOLOv2's
``solov2_targets``), loaders (``train_loader``, ``loader`` for evaluation). A family's exp picks
the transform list."""
from mmdet_lite.data.build import TRAIN_TRANSFORMS, build_sample_transforms
from mmdet_lite.data.coco import COCODataset, coco_from_dict, load_coco_json
from mmdet_lite.data.geometric import TestTransform
from mmdet_lite.data.image_io import decode_image, read_image
from mmdet_lite.data.loader import build_eval_loader, eval_collate, shard_indices
from mmdet_lite.data.synthetic import SHAPE_CATEGORIES, make_shapes_dataset
from mmdet_lite.data.voc import VOC_CLASSES, VOCDataset, voc_to_coco, voc_to_coco_dict

__all__ = [
    "TRAIN_TRANSFORMS", "build_sample_transforms", "COCODataset", "coco_from_dict",
    "load_coco_json", "decode_image", "read_image", "build_eval_loader", "eval_collate",
    "shard_indices", "SHAPE_CATEGORIES", "make_shapes_dataset", "TestTransform", "VOC_CLASSES",
    "VOCDataset", "voc_to_coco", "voc_to_coco_dict",
]

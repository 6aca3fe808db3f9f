"""Class names for a model when no dataset is loaded (demo, Predictor, ONNX metadata)."""
import json
import os

__all__ = ["COCO_CLASSES", "exp_class_names", "adopt_checkpoint_classes"]

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)


def _names_from_annotations(exp):
    ann = exp.val_ann
    if not ann:
        return None
    path = ann if os.path.isabs(ann) else os.path.join(exp.data_dir or "", ann)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            categories = json.load(f).get("categories", [])
        return [str(c["name"]) for c in sorted(categories, key=lambda c: c["id"])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def exp_class_names(exp):
    """The exp's class names, indexable by contiguous label.

    In order: ``exp.class_names`` when it is set (a list of ``num_classes`` names); the
    ``categories`` of its ``val_ann``
    file (sorted by id) when that file exists and has ``num_classes`` entries; the 80 COCO names
    for an 80-class model; else ``"0"``, ``"1"``, ...
    """
    num_classes = int(exp.num_classes)
    names = exp.class_names
    if names and len(names) == num_classes:
        return [str(n) for n in names]
    names = _names_from_annotations(exp)
    if names and len(names) == num_classes:
        return names
    if num_classes == len(COCO_CLASSES):
        return list(COCO_CLASSES)
    return [str(i) for i in range(num_classes)]


def adopt_checkpoint_classes(exp, ckpt_path, given=()):
    """Set ``exp.num_classes`` and ``exp.class_names`` from a checkpoint written by training
    (which records both), unless the keys ``given`` (overrides the user typed) name them.

    So the exp a model was trained with, without ``num_classes 5`` and without its annotation
    file, still builds the right head and labels. Returns the checkpoint dict.
    """
    from loguru import logger

    from mmdet_lite.utils.checkpoint import read_checkpoint

    ckpt = read_checkpoint(ckpt_path)
    num_classes, names = ckpt.get("num_classes"), ckpt.get("class_names")
    if isinstance(num_classes, int) and "num_classes" not in given \
            and num_classes != int(exp.num_classes):
        logger.info(f"{ckpt_path} was trained for {num_classes} classes: num_classes "
                    f"{exp.num_classes} -> {num_classes}")
        exp.num_classes = num_classes
    if isinstance(names, list) and len(names) == int(exp.num_classes) \
            and not exp.class_names and "class_names" not in given:
        exp.class_names = [str(n) for n in names]
    return ckpt

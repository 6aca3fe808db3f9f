"""Class names for a model when no dataset is loaded (demo, Predictor, ONNX metadata)."""
import json
import os

__all__ = ["COCO_CLASSES", "exp_class_names"]

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

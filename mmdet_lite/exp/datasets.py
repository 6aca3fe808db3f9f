"""Dataset presets: the exp fields that locate a dataset, for ``BaseExp.set_fields(**PRESET)``."""

__all__ = ["VOC2012", "SHAPES"]

# Pascal VOC 2012 converted to COCO format by ``python tools/voc2coco.py``.
VOC2012 = dict(num_classes=20, data_dir="datasets/VOCdevkit",
               train_ann="annotations/voc2012_train.json", val_ann="annotations/voc2012_val.json",
               train_image_folder="VOC2012/JPEGImages", val_image_folder="VOC2012/JPEGImages")

# The bundled synthetic shapes set (``mmdet_lite.data.synthetic.make_shapes_dataset``).
SHAPES = dict(num_classes=5, data_dir="datasets/shapes", train_ann="annotations/train.json",
              val_ann="annotations/val.json", train_image_folder="train", val_image_folder="val")

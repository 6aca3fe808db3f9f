#!/usr/bin/env python3
"""Generate the synthetic COCO-format "shapes" dataset (5 classes, boxes and polygons).

    python tools/make_shapes_dataset.py --out datasets/shapes
        [--num-train 300 --num-val 100 --seed 0]

Writes OUT/{train,val}/*.jpg and OUT/annotations/{train,val}.json. Use it with
``data_dir OUT train_ann annotations/train.json val_ann annotations/val.json
train_image_folder train val_image_folder val num_classes 5``.
"""
import sys
from pathlib import Path
from typing import List, Optional

# run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmdet_lite.core.cli_args import shapes_dataset_parser  # noqa: E402
from mmdet_lite.data.synthetic import make_shapes_dataset  # noqa: E402
from mmdet_lite.utils.errors import cli_main  # noqa: E402


@cli_main
def main(argv: Optional[List[str]] = None) -> None:
    args = shapes_dataset_parser().parse_args(argv)
    result = make_shapes_dataset(args.out, args.num_train, args.num_val, args.seed)
    for split, data in result.items():
        print(f"{split}: {len(data['images'])} images, {len(data['annotations'])} objects")


if __name__ == "__main__":
    main()

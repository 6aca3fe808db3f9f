#!/usr/bin/env python3
"""Convert a Pascal VOC split (VOCdevkit layout) into a COCO-format annotation file.

    python tools/voc2coco.py --voc-root VOCdevkit/VOC2007 --split test --out voc07_test.json

Category ids are 1..C in label-list order (default: the 20 VOC classes); ``file_name`` is
relative to ``<voc-root>/JPEGImages`` (use it as the exp's image folder); difficult objects are
kept with ``iscrowd 0`` and flagged ``ignore``/``difficult`` (see mmdet_lite/data/voc.py).
"""
import sys
from pathlib import Path
from typing import List, Optional

# run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmdet_lite.core.cli_args import voc2coco_parser  # noqa: E402
from mmdet_lite.data.voc import voc_to_coco  # noqa: E402
from mmdet_lite.utils.errors import cli_main  # noqa: E402


@cli_main
def main(argv: Optional[List[str]] = None) -> None:
    args = voc2coco_parser().parse_args(argv)
    data = voc_to_coco(args.voc_root, args.split, args.out, args.label_list)
    print(f"wrote {args.out}: {len(data['images'])} images, {len(data['annotations'])} objects, "
          f"{len(data['categories'])} categories")


if __name__ == "__main__":
    main()

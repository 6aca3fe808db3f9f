"""``tools/check_dataset.py``: check an exp's training and validation sets before a long run."""
import os

from mmdet_lite.core.cli_args import split_opts
from mmdet_lite.data.check import check_coco_split
from mmdet_lite.exp import build_exp
from mmdet_lite.utils.errors import UserError

__all__ = ["run_check_dataset"]

_SHOWN = 20


def _resolve(root, path):
    return path if os.path.isabs(path) else os.path.join(root, path)


def run_check_dataset(args):
    """Check the splits of ``args`` (``check_dataset_parser``); print one line per split and the
    unreadable files; ``UserError`` (exit 2) when any file has a problem."""
    exp = build_exp(args.exp_file or args.name, split_opts(args.opts))
    splits = {"train": (exp.train_ann, exp.train_image_folder),
              "val": (exp.val_ann, exp.val_image_folder)}
    problems = []
    for split in args.splits:
        ann, folder = splits[split]
        ann_path, image_dir = _resolve(exp.data_dir, ann), _resolve(exp.data_dir, folder)
        count, found = check_coco_split(ann_path, image_dir, decode=args.decode,
                                        threads=args.threads)
        print(f"{split}: {ann_path}: {count} images, {len(found)} with problems", flush=True)
        problems += found
    for line in problems[:_SHOWN]:
        print(f"  {line}", flush=True)
    if problems:
        more = f" ({len(problems) - _SHOWN} more not shown)" if len(problems) > _SHOWN else ""
        raise UserError(f"{len(problems)} image file(s) cannot be used{more}: fix or remove them "
                        "(or set skip_bad_images where the exp offers it)")
    print("every image is readable" + (" and decodes fully" if args.decode else ""), flush=True)

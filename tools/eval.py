#!/usr/bin/env python3
"""COCO evaluation of a checkpoint.

    python tools/eval.py -f EXP -c CKPT [-d N] [-b B] [-w W] [--conf 0.025] [--nms T] [--tsize S]
                         [--fp16] [--device gpu|cpu] [KEY VALUE ...]

Prints pycocotools' twelve summary lines, the per-class AP and the timings, and writes the
detections to ``<output_dir>/<exp name>/bbox.json``. ``-d N`` shards the images over N processes
(gloo on CPU, NCCL on GPU); ``-b`` is the total batch. Also runs under ``torchrun``.
"""
import sys
from pathlib import Path
from typing import List, Optional

# run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmdet_lite.core.cli_args import eval_parser, parse_args  # noqa: E402
from mmdet_lite.core.evaluate import run_eval  # noqa: E402
from mmdet_lite.utils.errors import cli_main  # noqa: E402


@cli_main
def main(argv: Optional[List[str]] = None) -> None:
    run_eval(parse_args(eval_parser(), argv))


if __name__ == "__main__":
    main()

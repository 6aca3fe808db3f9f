#!/usr/bin/env python3
"""Detect objects in images, a video or a webcam stream.

    python tools/demo.py image|video|webcam -f EXP -c CKPT --path FILE_OR_DIR [--conf 0.3]
                         [--tsize S] [--save_result] [--device gpu|cpu] [KEY VALUE ...]

``--save_result`` draws boxes, class names and scores into ``<folder>/vis_res/<timestamp>/`` and
prints where; ``<folder>`` is the training folder of ``-c`` (the one holding ``train_log.txt``)
unless ``output_dir`` is given, else ``<output_dir>/<exp_name>`` (``./outputs/<exp_name>``).
"""
import sys
from pathlib import Path
from typing import List, Optional

# run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmdet_lite.core.cli_args import demo_parser, parse_args  # noqa: E402
from mmdet_lite.core.demo import run_demo  # noqa: E402
from mmdet_lite.utils.errors import cli_main  # noqa: E402


@cli_main
def main(argv: Optional[List[str]] = None) -> None:
    run_demo(parse_args(demo_parser(), argv))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Convert PaddleDetection weights to a checkpoint that ``-c`` of every tool loads.

    python tools/convert_weights.py -f EXP -c IN.pdparams -oc OUT.pth -nc NUM_CLASSES
                                    [--only_backbone True] [KEY VALUE ...]

Prints the report (Paddle keys left unused, model keys left unfilled) and writes
``{"model": state_dict, "meta": {...}}`` atomically.
"""
import sys
from pathlib import Path
from typing import List, Optional

# run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmdet_lite.core.cli_args import convert_parser, parse_args  # noqa: E402
from mmdet_lite.core.convert_cli import run_convert  # noqa: E402
from mmdet_lite.utils.errors import cli_main  # noqa: E402


@cli_main
def main(argv: Optional[List[str]] = None) -> None:
    run_convert(parse_args(convert_parser(), argv))


if __name__ == "__main__":
    main()

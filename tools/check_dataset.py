#!/usr/bin/env python3
"""Check an exp's datasets before training: every annotation file parses, every image exists and
its header is readable (``--decode``: every pixel decodes, which finds truncated files).

    python tools/check_dataset.py -f EXP [--splits train val] [--decode] [KEY VALUE ...]

Unreadable files are listed together; the exit code is 2 when there is any.
"""
import sys
from pathlib import Path
from typing import List, Optional

# run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmdet_lite.core.check_dataset_cli import run_check_dataset  # noqa: E402
from mmdet_lite.core.cli_args import check_dataset_parser, parse_args  # noqa: E402
from mmdet_lite.utils.errors import cli_main  # noqa: E402


@cli_main
def main(argv: Optional[List[str]] = None) -> None:
    run_check_dataset(parse_args(check_dataset_parser(), argv))


if __name__ == "__main__":
    main()

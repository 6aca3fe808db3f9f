#!/usr/bin/env python3
"""Training: python tools/train.py -f EXP [-d N] [-b B] [-c CKPT [--resume]] [--fp16]
[KEY VALUE ...].

``-b`` is the total batch over all processes (default: the exp's per-device ``train_batch_size``
times the number of processes). ``-c`` alone initialises the weights (tensors whose shapes differ
are skipped and listed); with ``--resume`` training continues exactly where the checkpoint
stopped (``--resume`` alone: ``<output_dir>/<exp_name>/latest_ckpt.pth``). Also runs under
``torchrun --nproc_per_node N tools/train.py ...``.
"""
import sys
from pathlib import Path
from typing import List, Optional

# run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmdet_lite.core.cli_args import parse_args, train_parser  # noqa: E402
from mmdet_lite.core.train_cli import run_train  # noqa: E402
from mmdet_lite.utils.errors import cli_main  # noqa: E402


@cli_main
def main(argv: Optional[List[str]] = None) -> None:
    run_train(parse_args(train_parser(), argv))


if __name__ == "__main__":
    main()

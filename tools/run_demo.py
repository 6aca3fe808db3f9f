#!/usr/bin/env python3
"""The shapes demo (``make demo``): train PicoDet-XS from scratch on the CPU in a few minutes.

    python tools/run_demo.py [--data-dir datasets/shapes] [--output-dir outputs] [--device cpu]
                             [KEY VALUE ...]
    python tools/run_demo.py --write-assets      # (re)write assets/shapes_*.jpg

Builds the generated shapes dataset if it is missing (tools/make_shapes_dataset.py), trains
exps/picodet/picodet_xs_256_shapes.py with tools/train.py, evaluates the best checkpoint with
tools/eval.py and draws its detections on assets/shapes_*.jpg with tools/demo.py, then prints the
AP and where the pictures are. Trailing KEY VALUE pairs go to every tool (e.g. ``max_epoch 6``).
"""
import sys
from pathlib import Path
from typing import List, Optional

# run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmdet_lite.core.cli_args import parse_args, shapes_demo_parser  # noqa: E402
from mmdet_lite.core.shapes_demo import run_shapes_demo, write_demo_assets  # noqa: E402
from mmdet_lite.utils.errors import cli_main  # noqa: E402


@cli_main
def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(shapes_demo_parser(), argv)
    if args.write_assets:
        for path in write_demo_assets():
            print(f"wrote {path}")
        return
    result = run_shapes_demo(args.data_dir, args.output_dir, args.device, args.opts)
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in result["seconds"].items())
    print(f"\nshapes demo: AP50:95 {result['ap50_95'] * 100:.1f}, AP50 {result['ap50'] * 100:.1f} "
          f"on the generated val set ({result['checkpoint']})\n"
          f"pictures with the detections: {result['pictures']}\n"
          f"wall time: {sum(result['seconds'].values()):.0f} s ({steps})")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Export a checkpoint to ONNX and check it against PyTorch with onnxruntime.

    python tools/export_onnx.py -f EXP -c CKPT --output-name OUT.onnx [--no-postprocess]
                                [--dynamic] [--opset 17] [--tsize S] [KEY VALUE ...]

Input ``images``: float32 (N, 3, H, W), RGB, 0..255, resized to the test size. With the model's
post-processing (default: PicoDet's multi-class NMS, RT-DETR's top-300 over queries x classes) the
outputs are ``boxes`` (M, 4) x1y1x2y2 in input pixels, ``scores`` (M,), ``labels`` (M,),
``batch_indices`` (M,); with ``--no-postprocess`` the model's raw outputs (PicoDet: ``scores``
(N, A, C), ``bboxes`` (N, A, 4); RT-DETR: ``logits`` (N, Q, C), ``boxes`` (N, Q, 4) normalised
cxcywh). SOLOv2 outputs ``masks`` (M, H, W) bool at the input size instead of boxes (raw:
``cate_scores``, ``kernels``, ``mask_feats``); DCNv2 models need ``--opset 19``. ``--dynamic``
makes batch, height and width dynamic (RT-DETR, SOLOv2: multiples of 32). See
mmdet_lite/exporting/onnx_export.py.
"""
import sys
from pathlib import Path
from typing import List, Optional

# run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmdet_lite.core.cli_args import export_parser, parse_args  # noqa: E402
from mmdet_lite.exporting.cli import run_export  # noqa: E402
from mmdet_lite.utils.errors import cli_main  # noqa: E402


@cli_main
def main(argv: Optional[List[str]] = None) -> None:
    run_export(parse_args(export_parser(), argv))


if __name__ == "__main__":
    main()

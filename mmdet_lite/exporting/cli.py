"""``tools/export_onnx.py``: export a checkpoint to ONNX and check it with onnxruntime."""
import os

import numpy as np
import torch
from loguru import logger

from mmdet_lite.utils.checkpoint import load_weights
from mmdet_lite.utils.errors import UserError
from mmdet_lite.utils.logger import setup_logger

__all__ = ["run_export", "check_input"]


def check_input(test_size, batch_size=1, image=None, transform=None, seed=0):
    """The check input (N, 3, H, W) float32 0..255 of ``test_size`` (H, W): ``image`` through
    ``transform`` (zero-padded at the bottom and right to ``test_size``, as eval batches are
    padded), else noise."""
    if image is not None:
        from mmdet_lite.data.image_io import read_image

        chw, _ = transform(read_image(image))
        padded = np.zeros((3, *test_size), dtype=chw.dtype)
        padded[:, :chw.shape[1], :chw.shape[2]] = chw[:, :test_size[0], :test_size[1]]
        return torch.from_numpy(np.stack([padded] * batch_size)).float()
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch_size, 3, *test_size), generator=gen).float()


def run_export(args):
    """Everything ``tools/export_onnx.py`` does, for parsed ``args`` (``export_parser``)."""
    from mmdet_lite.core.class_names import exp_class_names
    from mmdet_lite.core.cli_args import split_opts
    from mmdet_lite.exp import build_exp
    from mmdet_lite.exporting.onnx_export import compare_outputs, export_onnx, run_onnx

    setup_logger(rank=0)
    exp = build_exp(args.exp_file or args.name, split_opts(args.opts), args.tsize)
    output = args.output_name or f"{exp.exp_name}.onnx"
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {output}: folder {folder} does not exist or is not writable")
    # Exps whose eval batches are padded to a stride (SOLOv2) trace at the padded test size.
    stride = int(getattr(exp, "pad_to_stride", 0) or 1)
    test_size = tuple(-(-int(side) // stride) * stride for side in exp.test_size)
    # the check input first: a bad --check-image fails before anything is written
    images = check_input(test_size, args.batch_size, args.check_image, exp.get_test_transform())
    model = exp.get_model()
    model.check_onnx_export(args.opset, args.dynamic, args.postprocess)  # before the weights load
    load_weights(model, args.ckpt)
    model.eval()
    metadata = dict(exp_name=exp.exp_name, class_names=exp_class_names(exp))
    module = export_onnx(model, output, test_size, postprocess=args.postprocess,
                         dynamic=args.dynamic, opset=args.opset, batch_size=args.batch_size,
                         metadata=metadata)
    shape = (f"(N, 3, H, W), traced at {test_size[0]}x{test_size[1]}," if args.dynamic
             else f"({args.batch_size}, 3, {test_size[0]}, {test_size[1]})")
    logger.info(f"exported {output} (opset {args.opset}, input images float32 {shape} 0..255 RGB, "
                f"{'post-processing inside' if args.postprocess else 'raw outputs'})")
    with torch.no_grad():
        reference = module(images)
    names = list(model.onnx_post_outputs)
    diff = compare_outputs(reference, run_onnx(output, images.numpy()), args.postprocess,
                           names=names)
    what = f"{len(reference[0])} detections" if args.postprocess else "raw outputs"
    # Without boxes the detections' masks are compared as 1 - IoU: a few edge pixels may flip.
    by_mask = args.postprocess and "boxes" not in names
    print(f"onnxruntime vs PyTorch on {'--check-image' if args.check_image else 'a random'} input "
          f"({what}): max abs diff {diff:.3g}{' (masks: 1 - IoU)' if by_mask else ''}",
          flush=True)
    if not diff <= (1e-2 if by_mask else 1e-3):
        logger.warning("onnxruntime and PyTorch disagree: check with --check-image on a real "
                       "image (on random weights near-equal scores can swap NMS / top-k choices)")
    print(f"saved {output}", flush=True)
    return output

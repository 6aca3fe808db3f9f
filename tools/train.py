#!/usr/bin/env python3
"""Training: python tools/train.py -f EXP [-d N] [-b B] [-c CKPT [--resume]] [--fp16] [KEY VALUE ...].

``-b`` is the total batch over all processes (default: the exp's per-device ``train_batch_size``
times the number of processes). ``-c`` alone initialises the weights (tensors whose shapes differ
are skipped and listed); with ``--resume`` training continues exactly where the checkpoint
stopped (``--resume`` alone: ``<output_dir>/<exp_name>/latest_ckpt.pth``). Also runs under
``torchrun --nproc_per_node N tools/train.py ...``.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mmdet_lite.core.cli_args import parse_args  # noqa: E402
from mmdet_lite.core.launch import launch  # noqa: E402
from mmdet_lite.core.trainer import run_training  # noqa: E402
from mmdet_lite.exp import get_exp  # noqa: E402
from mmdet_lite.utils.device import check_num_devices, device_name, select_device  # noqa: E402
from mmdet_lite.utils.errors import UserError, cli_main  # noqa: E402


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def make_parser():
    parser = argparse.ArgumentParser("mmdet_lite train", description="train a detector",
                                     epilog="Trailing KEY VALUE pairs override exp fields, e.g. "
                                            "max_epoch 100 base_lr 0.01 num_classes 5.")
    parser.add_argument("-f", "--exp_file", default=None, help="experiment file, e.g. "
                        "exps/picodet/picodet_s_416_coco_lcnet.py")
    parser.add_argument("-n", "--name", default=None, help="exp name under exps/ (instead of -f)")
    parser.add_argument("-d", "--devices", type=_positive_int, default=1,
                        help="processes on this machine (GPUs with --device gpu)")
    parser.add_argument("-b", "--batch-size", dest="batch_size", type=_positive_int, default=None,
                        help="total batch over all devices (default: train_batch_size per device)")
    parser.add_argument("-eb", "--eval-batch-size", dest="eval_batch_size", type=_positive_int,
                        default=None, help="total eval batch (default: eval_batch_size per device)")
    parser.add_argument("-w", "--workers", type=int, default=None,
                        help="training data-loader workers per process (default: exp.data_num_workers or 4)")
    parser.add_argument("-ew", "--eval-workers", dest="eval_workers", type=int, default=None,
                        help="evaluation data-loader workers per process (default: as -w)")
    parser.add_argument("-c", "--ckpt", default=None,
                        help="checkpoint: initial weights, or the run to continue with --resume")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run of -c (default: <save_dir>/latest_ckpt.pth)")
    parser.add_argument("--fp16", action="store_true", help="mixed precision (GPU only)")
    parser.add_argument("--sync_bn", action="store_true", help="SyncBatchNorm over GPUs")
    parser.add_argument("--device", default=None, choices=["gpu", "cpu"],
                        help="gpu or cpu (default: gpu when CUDA is available, else cpu)")
    parser.add_argument("--num_machines", type=_positive_int, default=1)
    parser.add_argument("--machine_rank", type=int, default=0)
    parser.add_argument("--dist-url", dest="dist_url", default="auto",
                        help="tcp://HOST:PORT of machine 0 for multi-machine runs")
    return parser


def run_train(args):
    """Check the command in this process (one-line errors), then train in every process."""
    args.device = device_name(args.device)
    select_device(args.device)
    check_num_devices(args.device, args.devices)
    exp = get_exp(args.exp_file, args.name)
    exp.merge(args.opts)
    world_size = args.devices * args.num_machines
    for flag, total in (("-b", args.batch_size), ("-eb", args.eval_batch_size)):
        if total is not None and total % world_size:
            raise UserError(f"{flag} {total} is not a multiple of the {world_size} processes")
    if args.ckpt is not None and not Path(args.ckpt).is_file():
        raise UserError(f"checkpoint {args.ckpt} does not exist")
    launch(run_training, args.devices, device=args.device, num_machines=args.num_machines,
           machine_rank=args.machine_rank, dist_url=args.dist_url, args=(exp, args))


@cli_main
def main(argv=None):
    run_train(parse_args(make_parser(), argv))


if __name__ == "__main__":
    main()

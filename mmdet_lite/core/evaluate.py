"""``tools/eval.py``: COCO evaluation of a checkpoint, sharded over ``-d`` processes."""
import os
import time

from loguru import logger

from mmdet_lite.core.launch import launch, launched_by_torchrun
from mmdet_lite.exp import build_exp
from mmdet_lite.models.fuse import fuse_model
from mmdet_lite.utils.checkpoint import load_weights
from mmdet_lite.utils.device import (
    check_num_devices,
    device_name,
    preferred_memory_format,
    select_device,
)
from mmdet_lite.utils.dist import get_local_rank, get_rank, get_world_size
from mmdet_lite.utils.errors import UserError
from mmdet_lite.utils.fileio import ensure_writable_dir
from mmdet_lite.utils.logger import setup_logger

__all__ = ["run_eval", "eval_exp", "evaluate_checkpoint"]


def eval_exp(args):
    """The exp of an eval command: ``KEY VALUE`` opts, then ``--tsize``, ``--conf``, ``--nms``
    (set through the exp's ``set_score_threshold`` / ``set_nms_threshold``)."""
    from mmdet_lite.core.cli_args import split_opts

    exp = build_exp(args.exp_file, split_opts(args.opts), args.tsize, exp_name=args.name)
    for flag, setter in (("conf", exp.set_score_threshold), ("nms", exp.set_nms_threshold)):
        value = getattr(args, flag, None)
        if value is None:
            continue
        try:
            setter(value)
        except UserError as err:
            raise UserError(f"--{flag}: {err}; drop --{flag}") from None
    return exp


def evaluate_checkpoint(exp, ckpt, device="cpu", batch_size=8, num_workers=2, fp16=False,
                        fuse=False):
    """Evaluate ``ckpt`` on ``exp``'s val set in this process (this rank's shard under ``launch``).

    ``batch_size`` is per process; ``fuse`` folds BatchNorm into the convolutions. Writes
    ``<output_dir>/<exp_name>/bbox.json`` (and ``segm.json`` for mask models). Returns the
    evaluator's ``(ap50_95, ap50, summary, stats)`` (the same on every rank).
    """
    rank, world_size = get_rank(), get_world_size()
    torch_device = select_device(device, get_local_rank())
    model = exp.get_model()
    load_weights(model, ckpt)
    model.eval()
    if fuse:
        fuse_model(model)
    model.to(torch_device, memory_format=preferred_memory_format(torch_device))
    evaluator = exp.get_evaluator(batch_size, num_workers, rank=rank, world_size=world_size)
    loader = exp.get_eval_loader(batch_size, num_workers, rank=rank, world_size=world_size)
    return evaluator.evaluate(model, loader, torch_device, fp16=fp16, distributed=world_size > 1,
                              output_dir=exp.save_dir)


def _eval_worker(exp, args, batch_size):
    rank = get_rank()
    setup_logger(exp.save_dir, rank=rank, filename="eval_log.txt")
    start = time.perf_counter()
    evaluate_checkpoint(exp, args.ckpt, args.device, batch_size, args.workers, args.fp16,
                        args.fuse)
    if rank == 0:  # the evaluator has logged the summary (twelve lines, per-class AP, timings)
        print(f"Evaluation of {get_world_size()} process(es) took "
              f"{time.perf_counter() - start:.1f} s; detections written to "
              f"{os.path.join(exp.save_dir, 'bbox.json')}", flush=True)


def run_eval(args):
    """Everything ``tools/eval.py`` does, for parsed ``args`` (see ``cli_args.eval_parser``).

    Every check that can fail on user input (device, exp keys, checkpoint, output folder) runs
    in this process before any worker starts, so errors are one line.
    """
    args.device = device_name(args.device)
    select_device(args.device)
    check_num_devices(args.device, args.devices)
    exp = eval_exp(args)
    setup_logger(rank=int(os.environ.get("RANK", 0)) if launched_by_torchrun() else 0)
    load_weights(exp.get_model(), args.ckpt)  # a wrong checkpoint fails here, once
    ensure_writable_dir(exp.save_dir)
    world_size = (int(os.environ["WORLD_SIZE"]) if launched_by_torchrun()
                  else args.devices * args.num_machines)
    total = args.batch_size or exp.eval_batch_size
    batch_size = max(1, total // world_size)
    logger.info(f"evaluating {args.ckpt} with {exp.exp_name} on {world_size} {args.device} "
                f"process(es), batch {batch_size} per process, test size {tuple(exp.test_size)}")
    launch(_eval_worker, args.devices, device=args.device, num_machines=args.num_machines,
           machine_rank=args.machine_rank, dist_url=args.dist_url, args=(exp, args, batch_size))

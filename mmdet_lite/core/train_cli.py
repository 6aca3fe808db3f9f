"""``tools/train.py``: check the command in this process, then train in every process."""
from pathlib import Path

from mmdet_lite.core.cli_args import split_opts
from mmdet_lite.core.launch import launch
from mmdet_lite.core.run_dir import check_resume, choose_run_dir
from mmdet_lite.core.trainer import run_training
from mmdet_lite.exp import build_exp
from mmdet_lite.utils.device import check_num_devices, device_name, select_device
from mmdet_lite.utils.errors import UserError

__all__ = ["run_train"]


def run_train(args):
    """Everything ``tools/train.py`` does, for parsed ``args`` (see ``cli_args.train_parser``).

    The checks that can fail on user input (device, exp keys, batch sizes, checkpoint path) run
    here before any worker starts, so errors are one line.
    """
    args.device = device_name(args.device)
    select_device(args.device)
    check_num_devices(args.device, args.devices)
    exp = build_exp(args.exp_file, split_opts(args.opts), exp_name=args.name)
    world_size = args.devices * args.num_machines
    for flag, total in (("-b", args.batch_size), ("-eb", args.eval_batch_size)):
        if total is not None and total % world_size:
            raise UserError(f"{flag} {total} is not a multiple of the {world_size} processes")
    if int(exp.max_epoch) < 1:
        raise UserError(f"max_epoch {exp.max_epoch}: training needs at least one epoch")
    if args.ckpt is not None and not Path(args.ckpt).is_file():
        raise UserError(f"checkpoint {args.ckpt} does not exist")
    if args.experiment_name:
        exp.experiment_name = args.experiment_name
    args.ckpt = choose_run_dir(exp, args.resume, args.ckpt, args.exist_ok)
    if args.resume:
        check_resume(exp, args.ckpt, args.allow_other_exp)
    launch(run_training, args.devices, device=args.device, num_machines=args.num_machines,
           machine_rank=args.machine_rank, dist_url=args.dist_url, args=(exp, args))

"""Run folders: every training run gets its own ``<output_dir>/<name>`` and never overwrites an
earlier one unless asked; ``--resume`` finds the newest run of an exp; a resumed checkpoint must
belong to the exp and leave epochs to train."""
import os
import re
from pathlib import Path

from loguru import logger

from mmdet_lite.utils import checkpoint as ckpt_io
from mmdet_lite.utils.errors import UserError

__all__ = ["RUN_FILES", "holds_run", "run_folders", "next_free_run", "choose_run_dir",
           "check_resume"]

# Files that mark a folder as holding a training run.
RUN_FILES = ("latest_ckpt.pth", "best_ckpt.pth", "train_log.txt")
_LATEST = "latest_ckpt.pth"


def holds_run(folder):
    """Whether ``folder`` holds (part of) a training run: a checkpoint or a training log."""
    folder = Path(folder)
    return folder.is_dir() and (any((folder / name).exists() for name in RUN_FILES)
                                or any(folder.glob("epoch_*.pth")))


def run_folders(output_dir, name):
    """The run folders of ``name`` under ``output_dir``: ``name`` and ``name_2``, ``name_3`` ..."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    pattern = re.compile(rf"^{re.escape(name)}(_\d+)?$")
    return sorted((p for p in root.iterdir() if p.is_dir() and pattern.match(p.name)),
                  key=lambda p: int(p.name.rsplit("_", 1)[1]) if p.name != name else 1)


def next_free_run(output_dir, name):
    """``name`` if ``<output_dir>/name`` holds no run, else the first ``name_N`` (N >= 2) that
    holds none."""
    candidate, number = name, 1
    while holds_run(Path(output_dir) / candidate):
        number += 1
        candidate = f"{name}_{number}"
    return candidate


def _newest_latest(output_dir, name):
    found = [p / _LATEST for p in run_folders(output_dir, name) if (p / _LATEST).is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def choose_run_dir(exp, resume, ckpt, exist_ok):
    """Set ``exp.experiment_name`` to this run's folder name and return the checkpoint to resume
    from (``ckpt``, or with ``--resume`` alone the newest ``latest_ckpt.pth`` of the exp's runs).

    A new run whose folder holds an earlier run goes to the next free ``<name>_N`` (``exist_ok``
    reuses the folder). A resumed run continues in the folder of its checkpoint when that is one
    of this exp's run folders.
    """
    name = exp.experiment_name or exp.exp_name
    if resume:
        if ckpt is None:
            latest = _newest_latest(exp.output_dir, name)
            if latest is None:
                raise UserError(f"--resume: no run of {name} under {exp.output_dir} holds a "
                                f"{_LATEST}; pass the checkpoint with -c")
            ckpt = str(latest)
        folder = Path(ckpt).resolve().parent
        if folder.parent == Path(exp.output_dir).resolve() and \
                folder in [p.resolve() for p in run_folders(exp.output_dir, name)]:
            exp.experiment_name = folder.name
            return ckpt
    if exist_ok:
        exp.experiment_name = name
        return ckpt
    free = next_free_run(exp.output_dir, name)
    if free != name:
        logger.warning(f"{os.path.join(exp.output_dir, name)} holds an earlier run: this run "
                       f"writes to {os.path.join(exp.output_dir, free)} (--exist-ok to reuse the "
                       "folder, --resume to continue that run)")
    exp.experiment_name = free
    return ckpt


def check_resume(exp, ckpt_path, allow_other_exp=False):
    """The checks of a ``--resume`` that fail on user input, before any process starts: the
    checkpoint is a training checkpoint of this exp (``allow_other_exp`` skips the name check)
    with epochs left before ``max_epoch``."""
    ckpt = ckpt_io.read_checkpoint(ckpt_path)
    if not isinstance(ckpt.get("optimizer"), dict) or "epoch" not in ckpt:
        raise UserError(f"--resume: {ckpt_path} is not a training checkpoint (no optimizer "
                        "state); use -c without --resume to initialise the weights from it")
    recorded = ckpt.get("exp_name")
    if recorded and recorded != exp.exp_name and not allow_other_exp:
        raise UserError(f"--resume: {ckpt_path} is a checkpoint of exp {recorded}, not of "
                        f"{exp.exp_name}; pass -f for {recorded}, or --allow-other-exp to "
                        "continue it under this exp")
    done = int(ckpt["epoch"])
    if done >= int(exp.max_epoch):
        raise UserError(f"--resume: {ckpt_path} has {done} epochs done and max_epoch is "
                        f"{exp.max_epoch}: nothing left to train (raise max_epoch to go on)")

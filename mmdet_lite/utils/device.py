"""Device selection from the ``--device gpu|cpu`` flag, with clear errors instead of crashes."""
import os

import torch

from .errors import UserError

__all__ = ["device_name", "select_device", "check_num_devices", "preferred_memory_format"]

_ALIASES = {"gpu": "cuda", "cuda": "cuda", "cpu": "cpu"}


def device_name(name=None):
    """``--device`` value -> ``"gpu"`` or ``"cpu"``; ``None`` means gpu when CUDA is available."""
    if name is None:
        return "gpu" if torch.cuda.is_available() else "cpu"
    return "cpu" if _kind(name) == "cpu" else "gpu"


def _kind(name):
    if name is None:
        name = device_name(None)
    key = str(name).lower()
    if key not in _ALIASES:
        raise UserError(f"--device {name} is not a device; use --device gpu or --device cpu")
    return _ALIASES[key]


def select_device(name="cpu", local_rank=0):
    """Return ``torch.device`` for ``"gpu"`` (``cuda:<local_rank>``) or ``"cpu"``.

    ``"gpu"`` on a machine without CUDA is a ``UserError``; ``None`` picks gpu when available.
    """
    if _kind(name) == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError("--device gpu was given but no CUDA GPU is available; use --device cpu")
    return torch.device("cuda", local_rank)


def check_num_devices(name, num_devices):
    """Validate ``-d N`` against the device kind: N >= 1, and N <= the GPU count for ``gpu``."""
    if num_devices < 1:
        raise UserError(f"-d {num_devices}: the number of devices must be at least 1")
    if _kind(name) == "cuda":
        select_device(name)
        available = torch.cuda.device_count()
        if num_devices > available:
            raise UserError(f"-d {num_devices} asks for {num_devices} GPUs but only {available} "
                            "are visible")
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
            (os.cpu_count() or 1)
        if num_devices > cores:
            raise UserError(f"-d {num_devices}: this machine has {cores} CPU core(s) for "
                            f"{num_devices} CPU processes; use -d {cores} or fewer")
    return num_devices


def preferred_memory_format(device):
    """Channels-last on the CPU, where oneDNN's convolutions (depthwise ones above all, and their
    backward passes) are faster in it than in NCHW; the default layout elsewhere. Values are the
    same up to float rounding."""
    return torch.channels_last if torch.device(device).type == "cpu" else torch.contiguous_format

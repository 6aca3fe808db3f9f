"""Helpers around ``torch.distributed`` that also work in a single process (no group set up)."""
import torch.distributed as dist

__all__ = ["is_dist", "get_rank", "get_local_rank", "set_local_rank", "get_world_size",
           "is_main_process", "synchronize", "all_gather_object"]

_LOCAL_RANK = 0


def is_dist():
    """True when a process group is initialised (``launch`` with more than one process)."""
    return dist.is_available() and dist.is_initialized()


def get_rank():
    return dist.get_rank() if is_dist() else 0


def get_local_rank():
    """Rank of this process on its machine (its GPU index with ``--device gpu``)."""
    return _LOCAL_RANK if is_dist() else 0


def set_local_rank(local_rank):
    """Record the machine-local rank (called by ``launch`` in every worker)."""
    global _LOCAL_RANK
    _LOCAL_RANK = int(local_rank)


def get_world_size():
    return dist.get_world_size() if is_dist() else 1


def is_main_process():
    return get_rank() == 0


def synchronize():
    """Barrier across all processes; a no-op in a single process."""
    if is_dist() and get_world_size() > 1:
        dist.barrier()


def all_gather_object(obj):
    """Gather a picklable object from every process: a list ordered by rank (``[obj]`` alone)."""
    if not is_dist() or get_world_size() == 1:
        return [obj]
    out = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out

"""Seeding and saving the random generators (Python, NumPy, torch CPU and CUDA) of a process."""
import os
import random

import numpy as np
import torch

__all__ = ["seed_everything", "get_rng_state", "set_rng_state", "run_seed"]


def seed_everything(seed):
    """Seed Python's, NumPy's and torch's (CPU and CUDA) random generators."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def get_rng_state():
    """This process's random generator states, as tensors and plain values
    (``weights_only``-safe)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return dict(python=[version, list(internal), gauss],
                numpy=[name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                       float(cached)],
                torch=torch.get_rng_state(),
                cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])


def set_rng_state(state):
    """Restore what ``get_rng_state`` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if (state["cuda"] and torch.cuda.is_available()
            and len(state["cuda"]) == torch.cuda.device_count()):
        torch.cuda.set_rng_state_all(state["cuda"])


def run_seed(saved, configured):
    """The seed of a training run: a resumed checkpoint's, else the exp's, else a random one
    that every process of the group agrees on."""
    import torch.distributed as dist

    if saved is not None:
        return int(saved)
    if configured is not None:
        return int(configured)
    seed = [int.from_bytes(os.urandom(4), "little") // 2]
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.broadcast_object_list(seed, src=0)
    return seed[0]

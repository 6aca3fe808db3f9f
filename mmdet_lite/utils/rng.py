"""Seeding and saving the random generators (Python, NumPy, torch CPU and CUDA) of a process."""
import random

import numpy as np
import torch

__all__ = ["seed_everything", "get_rng_state", "set_rng_state"]


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

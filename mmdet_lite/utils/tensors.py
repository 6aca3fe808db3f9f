"""Small helpers on nested model outputs."""
import torch


def to_float32(outputs):
    """Floating tensors of (nested tuples / lists / dicts of) outputs as float32
    (after autocast)."""
    if torch.is_tensor(outputs):
        return outputs.float() if outputs.is_floating_point() else outputs
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(to_float32(o) for o in outputs)
    if isinstance(outputs, dict):
        return {k: to_float32(v) for k, v in outputs.items()}
    return outputs

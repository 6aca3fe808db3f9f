"""mmengine's RTMDet optimizer, ExpMomentumEMA and LR schedule on a tiny module.

Usage: python mmdet_rtmdet_optim.py IN.pt OUT.pt (through tests/conftest.py::run_mmdet).
IN.pt: ``state`` (the tiny module's initial state dict), ``steps``, ``seed`` and ``lr_cases``
[(iters_per_epoch, max_epochs)]. Every step draws each parameter's gradient, then (after the
optimizer step) each BN buffer, from ``torch.Generator().manual_seed(seed)`` in name order.
OUT.pt: ``weight_decay`` {name: decay of its group}, ``model`` and ``ema`` state dicts after the
steps, and ``lrs`` [the LR of iterations 0..max_epochs * iters_per_epoch + 2 per case].
Never imports mmdet_lite.
"""
import mmdet_stubs  # noqa: F401  (before mmdet)

# isort: split
import sys

import torch
from mmdet.models.layers import ExpMomentumEMA
from mmengine.optim import CosineAnnealingLR, LinearLR, build_optim_wrapper
from torch import nn


def tiny_module():
    """The module of tests/core/test_rtmdet_optim.py (same layers, same names)."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 1,
                         bias=False), nn.GroupNorm(2, 4), nn.Flatten(), nn.Linear(4 * 9, 3))


def optimizer_and_ema(data):
    model = tiny_module()
    model.load_state_dict(data["state"])
    wrapper = build_optim_wrapper(model, dict(
        type="OptimWrapper", optimizer=dict(type="AdamW", lr=0.004, weight_decay=0.05),
        paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True)))
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {names[id(p)]: g["weight_decay"] for g in wrapper.optimizer.param_groups
             for p in g["params"]}
    ema = ExpMomentumEMA(model, momentum=0.0002, gamma=2000, update_buffers=True)
    gen = torch.Generator().manual_seed(int(data["seed"]))
    for _ in range(int(data["steps"])):
        for _, p in model.named_parameters():
            p.grad = torch.randn(p.shape, generator=gen)
        wrapper.step()
        for name, b in model.named_buffers():
            if b.is_floating_point():
                b.copy_(torch.rand(b.shape, generator=gen) + 0.5)
        ema.update_parameters(model)
    return dict(weight_decay=decay, model=model.state_dict(), ema=ema.module.state_dict())


def lr_values(iters_per_epoch, max_epochs, base_lr=0.004):
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base_lr)
    schedulers = [
        LinearLR(optimizer, start_factor=1.0e-5, by_epoch=False, begin=0, end=1000),
        CosineAnnealingLR.build_iter_from_epoch(
            optimizer, eta_min=base_lr * 0.05, begin=max_epochs // 2, end=max_epochs,
            T_max=max_epochs // 2, by_epoch=True, epoch_length=iters_per_epoch)]
    values = []
    for _ in range(max_epochs * iters_per_epoch + 3):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
    return values


def main(in_path, out_path):
    data = torch.load(in_path, weights_only=True)
    out = optimizer_and_ema(data)
    out["lrs"] = [lr_values(*case) for case in data["lr_cases"]]
    torch.save(out, out_path)


if __name__ == "__main__":
    main(*sys.argv[1:3])

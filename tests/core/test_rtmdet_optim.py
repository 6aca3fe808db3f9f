"""RTMDet's AdamW groups, ExpMomentumEMA mode and LR schedule against mmengine / mmdet 3.3.0."""
import math

import pytest
import torch
from torch import nn

from mmdet_lite.core.ema import ModelEMA
from mmdet_lite.solver import LinearWarmupFlatCosine, build_mmdet_adamw

from conftest import REPO_ROOT, run_mmdet

SCRIPT = REPO_ROOT / "tests/reference/mmdet_rtmdet_optim.py"
STEPS, SEED = 2500, 7
LR_CASES = [(7, 300), (30, 20), (9, 25), (5, 1)]


def tiny_module():
    """The module of tests/reference/mmdet_rtmdet_optim.py."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 1,
                         bias=False), nn.GroupNorm(2, 4), nn.Flatten(), nn.Linear(4 * 9, 3))


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rtmdet_optim")
    torch.manual_seed(0)
    model = tiny_module()
    for name, b in model.named_buffers():
        if b.is_floating_point():
            b.uniform_(0.5, 1.5)
    torch.save(dict(state=model.state_dict(), steps=STEPS, seed=SEED, lr_cases=LR_CASES),
               folder / "in.pt")
    run_mmdet(SCRIPT, folder / "in.pt", folder / "out.pt")
    return model, torch.load(folder / "out.pt", weights_only=True)


def test_no_decay_on_norms_and_biases_as_mmengine(ref):
    model, out = ref
    optimizer = build_mmdet_adamw(model, 0.004, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    ours = {names[id(p)]: g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert ours == out["weight_decay"]
    assert sorted(n for n, d in ours.items() if d > 0) == ["0.weight", "3.weight", "6.weight"]


def test_adamw_and_ema_steps_equal_mmengine(ref):
    model, out = ref
    model = tiny_module()
    model.load_state_dict(ref[0].state_dict())
    optimizer = build_mmdet_adamw(model, 0.004, 0.05)
    ema = ModelEMA(model, decay=1 - 0.0002, decay_type="exp_momentum")
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(STEPS):
        for _, p in model.named_parameters():
            p.grad = torch.randn(p.shape, generator=gen)
        optimizer.step()
        with torch.no_grad():
            for _, b in model.named_buffers():
                if b.is_floating_point():
                    b.copy_(torch.rand(b.shape, generator=gen) + 0.5)
        ema.update()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, out["model"][key], rtol=1e-6, atol=1e-6)
    averaged = ema.averaged()
    for key, value in out["ema"].items():
        if value.is_floating_point():
            torch.testing.assert_close(averaged[key], value, rtol=1e-6, atol=1e-6)
            # the average really lags the model: the test can tell the EMA from a copy
            assert (averaged[key] - model.state_dict()[key]).abs().max() > 1e-4


@pytest.mark.parametrize("case", range(len(LR_CASES)))
def test_lr_schedule_equals_mmengine(ref, case):
    iters_per_epoch, max_epochs = LR_CASES[case]
    expected = ref[1]["lrs"][case]
    schedule = LinearWarmupFlatCosine(0.004, iters_per_epoch, max_epochs)
    got = [schedule(t) for t in range(len(expected))]
    assert max(abs(a - b) for a, b in zip(got, expected)) <= 1e-15
    assert schedule(0) == pytest.approx(0.004 * 1e-5)
    # random access (a resumed run) gives the same values
    assert schedule(len(expected) // 3) == expected[len(expected) // 3]
    if case == 0:  # warmup over 1000 iterations, flat, cosine from epoch 150 to eta_min
        assert expected[999] == pytest.approx(0.004) and expected[1049] == pytest.approx(0.004)
        assert expected[-1] == pytest.approx(0.004 * 0.05, rel=1e-3)
        assert math.isclose(expected[1050 + 525], 0.0002 + 0.0038 * 0.5, rel_tol=1e-9)

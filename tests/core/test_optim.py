"""LR schedules, SGD + L2 decay and ModelEMA against PaddleDetection's own implementations."""
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
import torch.nn as nn

from mmdet_lite.convert.converter import compile_rules, map_key
from mmdet_lite.core.ema import ModelEMA
from mmdet_lite.exp import get_exp
from mmdet_lite.solver import (
    build_learning_rate,
    build_lr_scheduler,
    param_groups,
    scaled_base_lr,
    set_lr,
)
from mmdet_lite.utils.errors import UserError

from conftest import PADDLE_CONFIGS, REPO_ROOT, run_paddle

LR_REFERENCE = REPO_ROOT / "tests/reference/paddle_lr_schedule.py"
EMA_REFERENCE = REPO_ROOT / "tests/reference/paddle_ema_momentum.py"
DECAY_REFERENCE = REPO_ROOT / "tests/reference/paddle_decay_params.py"
LR_TOLERANCE = 1e-9
DECAY_CASES = ("picodet_s_416_coco_lcnet", "picodet_s_416_coco_npu")  # LCPAN and CSPPAN necks


def _cosine_warmup(max_epochs, warmup, **cosine):
    return [dict(name="CosineDecay", max_epochs=max_epochs, **cosine), warmup]


# name -> (exp file or None, base_lr, schedulers, steps per epoch, steps recorded)
LR_CASES = {
    "picodet_s_416_coco_lcnet": ("picodet_s_416_coco_lcnet", None, None, 4, 1210),
    "picodet_s_416_coco_npu": ("picodet_s_416_coco_npu", None, None, 3, 910),
    "warmup_longer_than_run": (None, 0.1, _cosine_warmup(
        2, dict(name="LinearWarmup", steps=300, start_factor=0.1)), 5, 320),
    "warmup_in_epochs": (None, 0.2, _cosine_warmup(
        6, dict(name="LinearWarmup", steps=100, epochs=1, start_factor=0.1)), 5, 40),
    "exp_warmup_floor_plateau": (None, 0.2, _cosine_warmup(
        10, dict(name="ExpWarmup", steps=7, power=3), min_lr_ratio=0.1, last_plateau_epochs=2),
        7, 80),
    "cosine_annealing_no_warmup": (None, 0.1, [dict(name="CosineDecay", max_epochs=10,
                                                    use_warmup=False, min_lr_ratio=0.1)], 7, 200),
    "cosine_plateau_no_warmup": (None, 0.1, [dict(name="CosineDecay", max_epochs=10,
                                                  use_warmup=False,
                                                  last_plateau_epochs=2)], 7, 80),
    "piecewise_warmup": (None, 0.01, [dict(name="PiecewiseDecay", gamma=0.1, milestones=[3, 6]),
                                      dict(name="LinearWarmup", steps=10, start_factor=0.001)],
                         5, 50),
}


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """Both Paddle references, run side by side: ({case: [lr, ...]},
    npz of the EMA/optimizer run)."""
    folder = tmp_path_factory.mktemp("paddle_optim")
    cases = []
    for name, (exp_name, base_lr, schedulers, steps_per_epoch, num_steps) in LR_CASES.items():
        case = dict(name=name, steps_per_epoch=steps_per_epoch, num_steps=num_steps)
        if exp_name:
            case["config"] = str(PADDLE_CONFIGS / "picodet" / f"{exp_name}.yml")
        else:
            case.update(base_lr=base_lr, schedulers=schedulers)
        cases.append(case)
    (folder / "cases.json").write_text(json.dumps(cases))
    with ThreadPoolExecutor(4) as pool:
        lrs = pool.submit(run_paddle, LR_REFERENCE, folder / "cases.json")
        ema = pool.submit(run_paddle, EMA_REFERENCE, folder / "ema.npz")
        decay = {name: pool.submit(run_paddle, DECAY_REFERENCE,
                                   PADDLE_CONFIGS / "picodet" / f"{name}.yml")
                 for name in DECAY_CASES}
        lr_values = json.loads(lrs.result())
        ema.result()
        decay = {name: json.loads(future.result()) for name, future in decay.items()}
    return lr_values, dict(np.load(folder / "ema.npz")), decay


@pytest.mark.parametrize("name", list(LR_CASES))
def test_lr_schedule_matches_ppdet(references, name):
    exp_name, base_lr, schedulers, steps_per_epoch, num_steps = LR_CASES[name]
    if exp_name:
        schedule = build_lr_scheduler(get_exp(str(REPO_ROOT / "exps/picodet" / f"{exp_name}.py")),
                                      steps_per_epoch)
    else:
        warmup = schedulers[1] if len(schedulers) > 1 else None
        schedule = build_learning_rate(base_lr, schedulers[0], warmup, steps_per_epoch)
    ours = np.array([schedule(t) for t in range(num_steps)])
    reference = np.array(references[0][name])
    assert reference.shape == (num_steps,)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=LR_TOLERANCE)
    if "annealing" not in name:  # Paddle's CosineAnnealingDecay is recursive; the rest is exact
        assert np.array_equal(ours, reference)


def test_lr_scaling_and_optimizer_of_picodet_exp():
    exp = get_exp(str(REPO_ROOT / "exps/picodet/picodet_s_416_coco_lcnet.py"))
    reference_batch = exp.train_batch_size * exp.ref_num_devices
    assert scaled_base_lr(exp) == scaled_base_lr(exp, reference_batch) == exp.base_lr
    assert scaled_base_lr(exp, reference_batch // 4) == pytest.approx(exp.base_lr / 4)
    schedule = build_lr_scheduler(exp, 10, batch_size=reference_batch // 2)
    assert schedule(300) == exp.base_lr / 2  # the first step after the 300 warmup steps
    model = TinyNet()
    optimizer = exp.get_optimizer(model)
    assert isinstance(optimizer, torch.optim.SGD)
    assert [(g["names"], g["weight_decay"], g["momentum"]) for g in optimizer.param_groups] == [
        (["conv.weight", "fc.weight", "fc.bias"], exp.weight_decay, 0.9),
        (["bn.weight", "bn.bias"], 0.0, 0.9)]


@pytest.mark.parametrize("name", DECAY_CASES)
def test_picodet_weight_decay_groups_match_ppdet(references, name):
    """Paddle's per-parameter ``L2Decay(0.0)`` set, renamed by the converter rules, is ours."""
    exp = get_exp(str(REPO_ROOT / "exps/picodet" / f"{name}.py"))
    optimizer = exp.get_optimizer(exp.get_model())
    ours = {g["weight_decay"] > 0: set(g["names"]) for g in optimizer.param_groups}
    rules = compile_rules(exp.convert_rules)
    for key, decayed in (("decay", True), ("no_decay", False)):
        paddle = {map_key(n, rules) for n in references[2][name][key]} - {None}
        assert paddle == ours[decayed], (key, sorted(paddle ^ ours[decayed])[:8])
    assert len(ours[False]) == 126


class TinyNet(nn.Module):
    """The reference script's net: conv 3->4 (no bias), BN (no weight decay), ReLU, mean, linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def no_weight_decay(self):
        return ["bn.weight", "bn.bias"]

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


PADDLE_TO_TORCH = {"conv.weight": "conv.weight", "bn.weight": "bn.weight", "bn.bias": "bn.bias",
                   "bn._mean": "bn.running_mean", "bn._variance": "bn.running_var",
                   "fc.weight": "fc.weight", "fc.bias": "fc.bias"}


def paddle_state(ref, prefix):
    """Torch-named state of the reference at ``prefix`` (``init``, ``step<i>``, ``ema``)."""
    out = {}
    for paddle_name, name in PADDLE_TO_TORCH.items():
        value = torch.from_numpy(ref[f"{prefix}/{paddle_name}"])
        out[name] = value.T.contiguous() if paddle_name == "fc.weight" else value
    return out


def load(model, state):
    own = model.state_dict()
    for name, value in state.items():
        own[name].copy_(value)


def test_ema_matches_ppdet_bit_for_bit(references):
    ref = references[1]
    model = TinyNet()
    load(model, paddle_state(ref, "init"))
    ema = ModelEMA(model, decay=0.9998, decay_type="threshold")
    for step in range(len(ref["lr"])):
        load(model, paddle_state(ref, f"step{step}"))  # the weights Paddle had after this step
        ema.update()
    averaged = ema.averaged()
    for name, value in paddle_state(ref, "ema").items():
        assert torch.equal(averaged[name], value), name
    assert torch.equal(averaged["bn.num_batches_tracked"], model.bn.num_batches_tracked)


def _train_like_reference(ref, weight_decay_everywhere=False):
    model = TinyNet()
    load(model, paddle_state(ref, "init"))
    model.bn.eval()
    if weight_decay_everywhere:
        groups = [dict(params=list(model.parameters()), weight_decay=0.05)]
    else:
        groups = param_groups(model, 0.05)
    optimizer = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    schedule = build_learning_rate(0.1, dict(name="CosineDecay", max_epochs=2),
                                   dict(name="LinearWarmup", steps=3, start_factor=0.1), 4)
    ema = ModelEMA(model)
    x, y = torch.from_numpy(ref["x"]), torch.from_numpy(ref["y"])
    for step, paddle_lr in enumerate(ref["lr"]):
        assert schedule.step(optimizer, step) == paddle_lr
        loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update()
    return model.state_dict(), ema.averaged()


def test_momentum_l2_decay_matches_ppdet(references):
    ref = references[1]
    weights, averaged = _train_like_reference(ref)
    last = f"step{len(ref['lr']) - 1}"
    for name, value in paddle_state(ref, last).items():
        torch.testing.assert_close(weights[name], value, rtol=1e-5, atol=1e-6, msg=name)
    for name, value in paddle_state(ref, "ema").items():
        torch.testing.assert_close(averaged[name], value, rtol=1e-5, atol=1e-6, msg=name)
    # Control: decaying the BN parameters too (Paddle's L2Decay(0.0) ignored) is far off.
    wrong, _ = _train_like_reference(ref, weight_decay_everywhere=True)
    assert (wrong["bn.weight"] - paddle_state(ref, last)["bn.weight"]).abs().max() > 1e-3


def test_schedule_config_errors_name_the_field():
    cosine, linear = dict(name="CosineDecay", max_epochs=2), dict(name="LinearWarmup", steps=3)
    with pytest.raises(UserError, match="lr_decay 'Cosine' is not known; choose from CosineDecay, "
                                        "PiecewiseDecay"):
        build_learning_rate(0.1, dict(name="Cosine"), linear, 4)
    with pytest.raises(UserError, match="^my_exp: warmup 'Linear' is not known"):
        build_learning_rate(0.1, cosine, dict(name="Linear"), 4, owner="my_exp")
    with pytest.raises(UserError, match="warmup LinearWarmup: .*'step'"):
        build_learning_rate(0.1, cosine, dict(name="LinearWarmup", step=3), 4)
    exp = get_exp(str(REPO_ROOT / "exps/picodet/picodet_s_416_coco_lcnet.py"))
    exp.merge(["lr_decay.name", "PiecewiseDecay"])  # its CosineDecay arguments do not fit
    with pytest.raises(UserError, match="^picodet_s_416_coco_lcnet: lr_decay PiecewiseDecay: "):
        exp.get_lr_scheduler(10)


def test_param_groups_and_lr_mult():
    model = TinyNet()
    model.fc.bias.requires_grad_(False)
    groups = param_groups(model, 1e-4)
    assert [g["names"] for g in groups] == [["conv.weight", "fc.weight"], ["bn.weight", "bn.bias"]]
    optimizer = torch.optim.SGD(groups, lr=1.0)
    optimizer.param_groups[0]["lr_mult"] = 0.1
    set_lr(optimizer, 0.5)
    assert [g["lr"] for g in optimizer.param_groups] == [pytest.approx(0.05), 0.5]
    model.no_weight_decay = lambda: ["bn.nope"]
    with pytest.raises(ValueError, match="bn.nope"):
        param_groups(model, 1e-4)


def test_ema_cycle_black_list_and_state_round_trip():
    model = TinyNet()
    ema = ModelEMA(model, decay=0.9, decay_type="normal", cycle_epoch=2, black_list=["running_var"])
    assert ema.averaged()["conv.weight"].equal(model.conv.weight)  # before any update
    for _ in range(3):
        with torch.no_grad():
            model.conv.weight.add_(1.0)
        ema.update()
    averaged = ema.averaged()
    expected = (sum(0.9 ** (2 - i) * 0.1 * (model.conv.weight - 2 + i) for i in range(3))
                / (1 - 0.9 ** 3))
    torch.testing.assert_close(averaged["conv.weight"], expected)
    assert "bn.running_var" not in ema.shadow
    state = ema.state_dict()
    clone = ModelEMA(model, decay=0.9, decay_type="normal", cycle_epoch=2,
                     black_list=["running_var"])
    clone.load_state_dict(state)
    assert clone.averaged()["conv.weight"].equal(averaged["conv.weight"])
    ema.snapshot()
    assert ema.step == 3 and ema.epoch == 1
    ema.snapshot()  # the second snapshot epoch restarts the average (cycle_epoch 2)
    assert ema.step == 0 and ema.epoch == 0
    assert all(not v.any() for v in ema.shadow.values())

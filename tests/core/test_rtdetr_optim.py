"""RT-DETR's optimizer (AdamW, LR multipliers, global clip), schedule and EMA against ppdet."""
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
import torch.nn as nn

from mmdet_lite.core.ema import ModelEMA
from mmdet_lite.exp import get_exp
from mmdet_lite.models.layers import FrozenBatchNorm2d
from mmdet_lite.solver import build_adamw, build_learning_rate, param_groups

from conftest import PADDLE_CONFIGS, REPO_ROOT, run_paddle

LR_REFERENCE = REPO_ROOT / "tests/reference/paddle_lr_schedule.py"
ADAMW_REFERENCE = REPO_ROOT / "tests/reference/paddle_adamw_ema.py"
EXPS = REPO_ROOT / "exps/rtdetr"
CONFIG = PADDLE_CONFIGS / "rtdetr" / "rtdetr_r18vd_6x_coco.yml"

# name -> (case for paddle_lr_schedule.py, our schedule)
LR_CASES = {
    "rtdetr_config": (dict(config=str(CONFIG), steps_per_epoch=40, num_steps=2100),
                      lambda: get_exp(EXPS / "rtdetr_r18vd_6x_coco.py").get_lr_scheduler(40)),
    "milestone_inside_warmup": (dict(config=str(CONFIG), steps_per_epoch=15, num_steps=2050),
                                lambda: get_exp(EXPS / "rtdetr_r18vd_6x_coco.py")
                                .get_lr_scheduler(15)),
    "voc_warmup_one_epoch": (
        dict(base_lr=1e-4, steps_per_epoch=30, num_steps=90,
             schedulers=[dict(name="PiecewiseDecay", gamma=1.0, milestones=[100]),
                         dict(name="LinearWarmup", steps=2000, start_factor=0.001, epochs=1)]),
        lambda: get_exp(EXPS / "rtdetr_r18vd_6x_voc2012.py").get_lr_scheduler(30)),
    "decay_after_warmup": (
        dict(base_lr=1e-4, steps_per_epoch=10, num_steps=60,
             schedulers=[dict(name="PiecewiseDecay", gamma=0.5, milestones=[3, 5]),
                         dict(name="LinearWarmup", steps=20, start_factor=0.001)]),
        lambda: build_learning_rate(1e-4, dict(name="PiecewiseDecay", gamma=0.5, milestones=[3, 5]),
                                    dict(name="LinearWarmup", steps=20, start_factor=0.001), 10)),
}


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    folder = tmp_path_factory.mktemp("paddle_rtdetr_optim")
    cases = [dict(case, name=name) for name, (case, _) in LR_CASES.items()]
    (folder / "cases.json").write_text(json.dumps(cases))
    with ThreadPoolExecutor(2) as pool:
        lrs = pool.submit(run_paddle, LR_REFERENCE, folder / "cases.json")
        adamw = pool.submit(run_paddle, ADAMW_REFERENCE, folder / "adamw.npz")
        lr_values = json.loads(lrs.result())
        adamw.result()
    return lr_values, dict(np.load(folder / "adamw.npz"))


@pytest.mark.parametrize("name", list(LR_CASES))
def test_lr_schedule_matches_ppdet(references, name):
    case, make = LR_CASES[name]
    schedule = make()
    ours = [schedule(t) for t in range(case["num_steps"])]
    assert ours == references[0][name]  # same float operations: bit-identical


def test_lr_scales_with_the_total_batch():
    exp = get_exp(EXPS / "rtdetr_r50vd_6x_coco.py")
    assert exp.base_lr == 1e-4 and exp.train_batch_size * exp.ref_num_devices == 16
    full, half = exp.get_lr_scheduler(100, batch_size=16), exp.get_lr_scheduler(100, batch_size=8)
    assert full(2000) == 1e-4 and full(0) == pytest.approx(1e-7)
    assert half(2000) == pytest.approx(5e-5) and half(7199) == half(2000)


def _groups(exp_name):
    exp = get_exp(EXPS / f"{exp_name}.py")
    with torch.device("meta"):
        model = exp.get_model()
    optimizer = exp.get_optimizer(model)
    by_name = {n: (g["lr_mult"], g["weight_decay"])
               for g in optimizer.param_groups for n in g["names"]}
    return exp, model, optimizer, by_name


def test_r18vd_param_groups():
    exp, model, optimizer, by_name = _groups("rtdetr_r18vd_6x_coco")
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["betas"] == (0.9, 0.999) and optimizer.defaults["eps"] == 1e-8
    names = [n for n, _ in model.named_parameters()]
    assert sorted(by_name) == sorted(names)  # freeze_at -1, BN not frozen: everything trains
    assert {wd for _, wd in by_name.values()} == {1e-4}  # norms and embeddings decay too (Paddle)
    assert any(".bn." in n for n in names) and any("norm" in n for n in names)
    assert any(isinstance(m, nn.Embedding) for m in model.modules())
    for name, (mult, _) in by_name.items():
        stage = name.startswith("backbone.res")
        assert mult == (0.1 if stage else 1.0), name
    assert by_name["backbone.conv1.conv1_1.conv.weight"][0] == 1.0  # Paddle's stem: lr=1.0
    lrs = {g["lr_mult"]: g["lr"] for g in optimizer.param_groups}
    assert lrs == {0.1: pytest.approx(1e-5), 1.0: 1e-4}
    exp.get_lr_scheduler(10).step(optimizer, 5)
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(1e-4 * (0.001 + 0.999 * 5 / 2000) * group["lr_mult"])


def test_hgnetv2_l_param_groups():
    exp, model, optimizer, by_name = _groups("rtdetr_hgnetv2_l_6x_coco")
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith("backbone.stem.") for n in frozen)  # freeze_at 0: the stem
    assert not set(frozen) & set(by_name)
    assert not any(".bn." in n for n in by_name if n.startswith("backbone."))  # FrozenBatchNorm2d
    for name, (mult, decay) in by_name.items():
        assert mult == (0.05 if name.startswith("backbone.stages.") else 1.0), name
        assert decay == 1e-4
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(by_name)


def test_no_weight_decay_patterns():
    model = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
    groups = param_groups(model, 0.1, no_weight_decay=[r"^1\."])
    assert [(g["names"], g["weight_decay"], g["lr_mult"]) for g in groups] == [
        (["0.weight", "0.bias"], 0.1, 1.0), (["1.weight", "1.bias"], 0.0, 1.0)]


class TinyNet(nn.Module):
    """The reference script's net;
    ``param_lr_mults`` plays Paddle's ``ParamAttr(learning_rate)``."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.embed = nn.Embedding(2, 4)
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 3)
        self.frozen = nn.Parameter(torch.full((3,), 0.7), requires_grad=False)

    def param_lr_mults(self):
        return {"conv.weight": 0.1, "bn.weight": 0.1, "bn.bias": 0.1}

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x))).mean((2, 3)) + self.embed.weight
        return self.fc(self.norm(x)) + 0 * self.frozen


PADDLE_TO_TORCH = {"conv.weight": "conv.weight", "bn.weight": "bn.weight", "bn.bias": "bn.bias",
                   "bn._mean": "bn.running_mean", "bn._variance": "bn.running_var",
                   "embed.weight": "embed.weight", "norm.weight": "norm.weight",
                   "norm.bias": "norm.bias", "fc.weight": "fc.weight", "fc.bias": "fc.bias"}


def paddle_state(ref, prefix):
    out = {}
    for paddle_name, name in PADDLE_TO_TORCH.items():
        value = torch.from_numpy(ref[f"{prefix}/{paddle_name}"])
        out[name] = value.T.contiguous() if paddle_name == "fc.weight" else value
    return out


def _train_like_reference(ref, no_weight_decay=()):
    model = TinyNet()
    own = model.state_dict()
    for name, value in paddle_state(ref, "init").items():
        own[name].copy_(value)
    model.bn.eval()
    optimizer = build_adamw(model, 0.01, 0.05, no_weight_decay)
    schedule = build_learning_rate(0.01, dict(name="PiecewiseDecay", gamma=1.0, milestones=[100]),
                                   dict(name="LinearWarmup", steps=4, start_factor=0.001), 4)
    ema = ModelEMA(model, decay=0.9999, decay_type="exponential")
    x, y = torch.from_numpy(ref["x"]), torch.from_numpy(ref["y"])
    for step, paddle_lr in enumerate(ref["lr"]):
        assert schedule.step(optimizer, step) == paddle_lr
        loss = ((model(x) - y) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)  # as the trainer does
        assert norm > 0.1  # the clip is active
        optimizer.step()
        ema.update()
    return model, ema.averaged()


def test_exponential_ema_matches_ppdet_over_the_ramp(references):
    ref = references[1]
    net = nn.Linear(4, 3)
    ema = ModelEMA(net, decay=0.9999, decay_type="exponential")
    rng = np.random.default_rng(1)
    checkpoints = sorted({int(k.split("/")[1]) for k in ref if k.startswith("ema_long/")})
    assert checkpoints == [1, 10, 2000, 3000]
    for step in range(1, checkpoints[-1] + 1):
        with torch.no_grad():  # the reference's draws: Paddle's (in, out) weight, then the bias
            net.weight.copy_(torch.from_numpy(rng.normal(0.0, 1.0, (4, 3)).astype("float32")).T)
            net.bias.copy_(torch.from_numpy(rng.normal(0.0, 1.0, 3).astype("float32")))
        ema.update()
        if step in checkpoints:
            averaged = ema.averaged()
            torch.testing.assert_close(averaged["weight"], torch.from_numpy(
                ref[f"ema_long/{step}/weight"]).T, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(averaged["bias"], torch.from_numpy(
                ref[f"ema_long/{step}/bias"]), rtol=1e-5, atol=1e-6)


def test_adamw_clip_and_exponential_ema_match_ppdet(references):
    ref = references[1]
    model, averaged = _train_like_reference(ref)
    last = f"step{len(ref['lr']) - 1}"
    for name, value in paddle_state(ref, last).items():
        torch.testing.assert_close(model.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)
    for name, value in paddle_state(ref, "ema").items():
        torch.testing.assert_close(averaged[name], value, rtol=1e-5, atol=1e-6, msg=name)
    # A frozen tensor (ppdet develop's ema_filter_no_grad keeps it as is): averaged without bias
    # correction, it equals itself once the decays' product is below float32 precision.
    assert torch.equal(averaged["frozen"], model.frozen)
    # Control: exempting the norms and the embedding from AdamW's decay is visibly off.
    wrong, _ = _train_like_reference(ref, no_weight_decay=[r"^(bn|norm|embed)\."])
    assert (wrong.norm.weight - paddle_state(ref, last)["norm.weight"]).abs().max() > 1e-4


def test_ema_filter_no_grad_keeps_frozen_tensors_live():
    """ppdet develop's ``ema_filter_no_grad``: parameters that do not train (and a frozen norm's
    affine) read the live value; trainable weights and running statistics are averaged."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), FrozenBatchNorm2d(4), nn.Conv2d(4, 4, 1))
    model[0].requires_grad_(False)
    with torch.no_grad():
        for tensor in model[1].buffers():
            tensor.uniform_(0.5, 1.5)
    filtered = ModelEMA(model, decay=0.9999, decay_type="exponential", filter_no_grad=True)
    plain = ModelEMA(model, decay=0.9999, decay_type="exponential")
    filtered.update(), plain.update()
    live, averaged, unfiltered = model.state_dict(), filtered.averaged(), plain.averaged()
    frozen = ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert filtered.black_list == set(frozen)
    for name in frozen:  # one exponential update leaves (1 - 5e-4) x value unless filtered
        assert torch.equal(averaged[name], live[name]), name
        assert not torch.allclose(unfiltered[name], live[name], rtol=1e-4, atol=0), name
    for name in ["1.running_mean", "1.running_var", "2.weight"]:
        assert torch.equal(averaged[name], unfiltered[name]), name
        assert not torch.allclose(averaged[name], live[name], rtol=1e-4, atol=0), name


def test_rtdetr_trainer_filters_the_frozen_backbone_from_the_ema():
    exp = get_exp(str(REPO_ROOT / "exps/rtdetr/rtdetr_r50vd_6x_coco.py"))
    model = exp.get_model()
    ema = ModelEMA(model, exp.ema_decay, exp.ema_decay_type, filter_no_grad=exp.ema_filter_no_grad)
    assert exp.ema_filter_no_grad
    assert "backbone.conv1.conv1_1.conv.weight" in ema.black_list  # freeze_at 0: the stem
    assert "backbone.res2.0.branch2a.bn.weight" in ema.black_list  # freeze_norm
    assert "backbone.res2.0.branch2a.bn.running_mean" not in ema.black_list
    assert not any(k.startswith(("encoder.", "decoder.")) for k in ema.black_list)

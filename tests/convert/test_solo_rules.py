"""The original SOLO repository's checkpoints (``SOLOv2_R50_3x.pth``,
``SOLOv2_LIGHT_448_R50_3x.pth``): every key of their state dicts (names and shapes in
tests/fixtures/solo, derived from SOLO's module code: see ``derive_solo_keys.py`` there) maps one
to one onto our model built from the matching exp, and a PyTorch file with those names converts
through ``tools/convert_weights.py`` into a checkpoint that loads and runs."""
import importlib.util
import json

import numpy as np
import pytest
import torch

from mmdet_lite.convert.converter import compile_rules, convert_state_dict, map_key
from mmdet_lite.exp import get_exp
from mmdet_lite.utils.checkpoint import load_checkpoint, load_weights

from conftest import REPO_ROOT, start_tool
from solo_reference import solov2_raw_outputs

FIXTURES = REPO_ROOT / "tests/fixtures/solo"
EXPS = {"SOLOv2_R50_3x": "solov2_r50_fpn_3x_solo",
        "SOLOv2_LIGHT_448_R50_3x": "solov2_light_448_r50_fpn_3x_solo"}


def _fixture(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _exp(name):
    return get_exp(REPO_ROOT / "exps/solov2" / f"{EXPS[name]}.py")


def test_fixtures_are_what_the_derivation_writes():
    spec = importlib.util.spec_from_file_location("derive_solo_keys",
                                                  FIXTURES / "derive_solo_keys.py")
    derive = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(derive)
    assert set(derive.CHECKPOINTS) == set(EXPS)
    for name in EXPS:
        assert _fixture(name) == json.loads(json.dumps(derive.fixture(name))), name


@pytest.mark.parametrize("name", list(EXPS))
def test_every_solo_key_maps_one_to_one(name):
    keys = _fixture(name)["keys"]
    exp = _exp(name)
    assert exp.convert_source_kinds == ("torch",)
    with torch.device("meta"):
        model = exp.get_model()
    own = model.state_dict()
    params = {k: np.broadcast_to(np.float32(0), shape) for k, shape in keys.items()}
    state_dict, report = convert_state_dict(params, model, exp.convert_rules, origin="PyTorch")
    assert not report.unused and not report.missing, report.summary()
    counters = [k for k in keys if k.endswith("num_batches_tracked")]
    assert sorted(report.dropped) == sorted(counters) and len(counters) == 53  # BN layers
    assert len(report.filled) == len(keys) - len(counters) == len(set(report.sources.values()))
    assert set(state_dict) == {k for k in own if not k.endswith("num_batches_tracked")}
    assert all(tuple(v.shape) == tuple(own[k].shape) for k, v in state_dict.items())
    head = model.head
    assert len(head.kernel_convs) == exp.head["stacked_convs"] and \
        head.solo_kernel.out_channels == keys["bbox_head.solo_kernel.bias"][0]


def _random_solo_weights(keys, seed=0):
    """Tensors under SOLO's names that keep activations in range: conv weights of std
    ``1 / sqrt(fan_in)``, norm scales near 1, positive BN variances, int64 counters."""
    gen = torch.Generator().manual_seed(seed)
    weights = {}
    for key, shape in keys.items():
        if key.endswith("num_batches_tracked"):
            weights[key] = torch.tensor(1000, dtype=torch.int64)
        elif key.endswith("running_var"):
            weights[key] = torch.rand(shape, generator=gen) + 0.5
        elif len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            weights[key] = torch.randn(shape, generator=gen) / fan_in ** 0.5
        elif key.endswith(".weight"):  # BN / GN scales
            weights[key] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:  # biases, running means
            weights[key] = 0.1 * torch.randn(shape, generator=gen)
    return weights


@pytest.mark.parametrize("name", list(EXPS))
def test_converted_model_computes_solos_forward(name):
    """Our model with the converted weights against SOLO's forward transcribed on SOLO's own
    names (``solo_reference``): FPN maps, category logits and kernels per level, mask
    features."""
    keys = _fixture(name)["keys"]
    weights = _random_solo_weights(keys, seed=2)
    exp = _exp(name)
    model = exp.get_model().eval()
    state_dict, _ = convert_state_dict({k: v.numpy() for k, v in weights.items()}, model,
                                       exp.convert_rules)
    load_weights(model, state_dict)
    images = torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(3)) * 255
    with torch.no_grad():
        feats = model.forward_features(model.normalize(images))
        cate_logits, kernels = model.head.forward_levels(feats)
        ours = dict(feats=feats, cate_logits=cate_logits, kernels=kernels,
                    mask_feats=model.mask_head(feats))
        reference = solov2_raw_outputs(images, weights, exp.head["num_grids"],
                                       exp.head["stacked_convs"])
    for what, want in reference.items():
        for got, want_level in zip(*([ours[what], want] if isinstance(want, list)
                                     else [[ours[what]], [want]])):
            assert got.shape == want_level.shape, what
            scale = float(want_level.abs().max())
            assert scale > 1e-2, what
            torch.testing.assert_close(got, want_level, rtol=1e-4, atol=1e-4 * scale, msg=what)


def test_solo_pth_converts_loads_and_runs(tmp_path):
    name = "SOLOv2_LIGHT_448_R50_3x"
    keys = _fixture(name)["keys"]
    weights = _random_solo_weights(keys)
    source = tmp_path / f"{name}.pth"
    # as mmcv's save_checkpoint writes it (PyTorch 1.x of 2020: the legacy, non-zip format)
    torch.save({"meta": {"mmdet_version": "1.0.0", "epoch": 36, "CLASSES": ("person",)},
                "state_dict": weights,
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0]}]}},
               source, _use_new_zipfile_serialization=False)
    exp_file = REPO_ROOT / "exps/solov2" / f"{EXPS[name]}.py"
    proc = start_tool("convert_weights.py", "-f", exp_file, "-c", source, "-oc",
                      tmp_path / "converted.pth", cwd=tmp_path)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "0 PyTorch tensors unused, 0 model tensors not filled" in out
    assert "unused PyTorch keys: none" in out

    converted = load_checkpoint(tmp_path / "converted.pth")
    exp = get_exp(exp_file)
    rules = compile_rules(exp.convert_rules)
    sources = {map_key(k, rules): k for k in keys if not k.endswith("num_batches_tracked")}
    assert set(converted) == set(sources)
    for key, tensor in converted.items():
        assert torch.equal(tensor, weights[sources[key]]), key

    model = exp.get_model().eval()
    load_weights(model, tmp_path / "converted.pth")
    images = torch.rand(1, 3, 128, 160, generator=torch.Generator().manual_seed(1)) * 255
    with torch.no_grad():
        cate_scores, kernels, mask_feats = model(images)
    cells = sum(g * g for g in exp.head["num_grids"])
    assert cate_scores.shape == (1, cells, exp.num_classes)
    assert kernels.shape == (1, cells, 128) and mask_feats.shape == (1, 128, 32, 40)
    assert all(torch.isfinite(t).all() for t in (cate_scores, kernels, mask_feats))
    assert mask_feats.std() > 0 and kernels.std() > 0

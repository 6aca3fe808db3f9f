"""``--only_backbone True`` for the DCN SOLOv2 exps: ImageNet-pretrained ResNet-vd weights
(``ResNet50_vd_ssld_v2_pretrained`` style: Paddle's backbone names without ``backbone.``, a
classifier ``fc``, no DCN ``conv_offset``) convert, the offsets reported as initialised to zero
(Paddle's initial value), every other backbone tensor taken from the file."""
import pickle
import re

import numpy as np
import pytest
import torch

from mmdet_lite.convert.converter import convert_state_dict
from mmdet_lite.core.cli_args import convert_parser, parse_args
from mmdet_lite.core.convert_cli import run_convert
from mmdet_lite.exp import get_exp
from mmdet_lite.utils.checkpoint import load_checkpoint
from mmdet_lite.utils.errors import UserError

from conftest import REPO_ROOT

LETTERS = "abcdefghij"


def _paddle_imagenet_name(key, blocks_per_stage):
    """Our backbone key under the name PaddleClas / ppdet ImageNet files use."""
    key = key[len("backbone."):]
    stage, block = re.match(r"^res(\d)\.(\d+)\.", key).groups() if key.startswith("res") \
        else (None, None)
    if stage is not None:
        index = int(block)
        letter = "a" if index == 0 else (f"b{index}" if blocks_per_stage[stage] > 10
                                         else LETTERS[index])
        key = re.sub(r"^res(\d)\.(\d+)\.", f"res{stage}.res{stage}{letter}.", key)
    return (key.replace(".bn.", ".norm.").replace(".running_mean", "._mean")
            .replace(".running_var", "._variance"))


def _imagenet_params(model, seed=0):
    rng = np.random.default_rng(seed)
    blocks = {name[3:]: len(getattr(model.backbone, name))
              for name in model.backbone.stage_names}
    params = {_paddle_imagenet_name(k, blocks): rng.standard_normal(tuple(v.shape))
              .astype(np.float32)
              for k, v in model.state_dict().items()
              if k.startswith("backbone.") and "conv_offset" not in k
              and not k.endswith("num_batches_tracked")}
    params["fc_0.w_0"] = rng.standard_normal((2048, 1000)).astype(np.float32)
    params["fc_0.b_0"] = np.zeros(1000, np.float32)
    return params


@pytest.mark.parametrize("name", ["solov2_r50_enhance_coco", "solov2_r101_vd_fpn_3x_coco"])
def test_imagenet_weights_convert_with_zero_dcn_offsets(name, tmp_path, capsys):
    exp_file = REPO_ROOT / "exps/solov2" / f"{name}.py"
    model = get_exp(exp_file).get_model()
    params = _imagenet_params(model)
    with open(tmp_path / "imagenet.pdparams", "wb") as f:
        pickle.dump(params, f, protocol=2)
    out = run_convert(parse_args(convert_parser(), [
        "-f", str(exp_file), "-c", str(tmp_path / "imagenet.pdparams"),
        "-oc", str(tmp_path / "backbone.pth"), "--only_backbone", "True"]))
    text = capsys.readouterr().out
    offsets = sorted(k for k in model.state_dict()
                     if "conv_offset" in k and k.startswith("backbone."))
    assert len(offsets) == 2 * sum(len(getattr(model.backbone, f"res{s}")) for s in (3, 4, 5))
    assert f"{len(offsets)} initialised to zero" in text.splitlines()[0]
    assert f"model keys initialised to zero (as Paddle initialises them) ({len(offsets)}):" in text
    assert "model keys not filled: none" in text
    assert "unused Paddle keys (2):" in text  # the classifier

    saved = load_checkpoint(out)
    expected = {k for k in model.state_dict() if k.startswith("backbone.")
                and not k.endswith("num_batches_tracked")}
    assert set(saved) == expected
    for key in offsets:
        assert saved[key].shape == model.state_dict()[key].shape and not saved[key].any(), key
    blocks = {n[3:]: len(getattr(model.backbone, n)) for n in model.backbone.stage_names}
    for key in expected - set(offsets):
        source = params[_paddle_imagenet_name(key, blocks)]
        assert torch.equal(saved[key], torch.from_numpy(source)), key


def test_a_detector_file_without_dcn_offsets_is_still_an_error():
    """Offsets are zero-filled only for ImageNet weights (``only_backbone``): a full SOLOv2
    checkpoint that lacks them is another model's."""
    exp = get_exp(REPO_ROOT / "exps/solov2/solov2_r50_enhance_coco.py")
    with torch.device("meta"):
        model = exp.get_model()
    blocks = {n[3:]: len(getattr(model.backbone, n)) for n in model.backbone.stage_names}
    params = {"backbone." + _paddle_imagenet_name(k, blocks): np.zeros(1, np.float32)
              for k in model.state_dict() if k.startswith("backbone.")}
    with pytest.raises(UserError, match="no source"):
        convert_state_dict(params, model, exp.convert_rules)

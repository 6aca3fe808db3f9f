"""The rule-table converter: renaming, BN buffers, Linear transposition,
and every error it reports."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from mmdet_lite.convert.converter import compile_rules, convert_state_dict, map_key
from mmdet_lite.convert.picodet_rules import NECK_RULES, PICODET_RULES
from mmdet_lite.models.backbones.lcnet import LCNet
from mmdet_lite.models.layers import ConvBN
from mmdet_lite.utils.errors import UserError

RULES = [
    (r"^head\.cls_(\d)$", None),                    # alias saved twice by Paddle
    (r"^head\.cls_list\.(\d)\.", r"head.cls.\1."),  # rename a list
]


class Toy(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.backbone = ConvBN(3, 4, 3, act="relu")
        self.head = nn.Module()
        self.head.fc = nn.Linear(4, 4)
        self.head.cls = nn.ModuleList([nn.Linear(4, num_classes), nn.Linear(4, num_classes)])


def paddle_params(num_classes=3, seed=0):
    """What Paddle saves for ``Toy``: BN ``_mean``/``_variance``,
    Linear weights [in, out], aliases."""
    rng = np.random.RandomState(seed)

    def r(*shape):
        return rng.normal(size=shape).astype(np.float32)

    params = {"backbone.conv.weight": r(4, 3, 3, 3), "backbone.bn.weight": r(4),
              "backbone.bn.bias": r(4), "backbone.bn._mean": r(4), "backbone.bn._variance": r(4),
              "head.fc.weight": r(4, 4), "head.fc.bias": r(4)}
    for i in range(2):
        params[f"head.cls_list.{i}.weight"] = r(4, num_classes)
        params[f"head.cls_list.{i}.bias"] = r(num_classes)
        params[f"head.cls_{i}"] = params[f"head.cls_list.{i}.weight"]
    return params


def as_paddle(state_dict, prefix=""):
    """A PyTorch state dict under Paddle's BN names, as numpy arrays."""
    return {prefix + k.replace("running_mean", "_mean").replace("running_var", "_variance"):
            v.numpy()
            for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}


def test_converts_renames_and_transposes():
    params = paddle_params()
    model = Toy()
    state_dict, report = convert_state_dict(params, model, RULES)
    assert set(state_dict) == {k for k in model.state_dict()
                               if not k.endswith("num_batches_tracked")}
    model.load_state_dict(state_dict, strict=False)
    assert torch.equal(model.backbone.bn.running_mean,
                       torch.from_numpy(params["backbone.bn._mean"]))
    assert torch.equal(model.backbone.bn.running_var,
                       torch.from_numpy(params["backbone.bn._variance"]))
    # Square Linear: only the module type can tell that it needs a transpose.
    assert torch.equal(model.head.fc.weight, torch.from_numpy(params["head.fc.weight"].T))
    assert torch.equal(model.head.cls[1].weight,
                       torch.from_numpy(params["head.cls_list.1.weight"].T))
    assert sorted(report.transposed) == ["head.cls.0.weight", "head.cls.1.weight", "head.fc.weight"]
    assert sorted(report.dropped) == ["head.cls_0", "head.cls_1"]
    assert report.unused == [] and report.missing == []
    assert report.sources["head.cls.0.bias"] == "head.cls_list.0.bias"


def test_unused_paddle_key_is_an_error_unless_expected():
    params = dict(paddle_params(), **{"head.extra.weight": np.zeros(2, np.float32)})
    with pytest.raises(UserError,
                       match=r"1 Paddle tensors have no destination.*head\.extra\.weight"):
        convert_state_dict(params, Toy(), RULES, source="x.pdparams")
    _, report = convert_state_dict(params, Toy(), RULES, expected_unused=[r"^head\.extra\."])
    assert report.unused == ["head.extra.weight"]


def test_unfilled_model_key_is_an_error_unless_expected():
    params = paddle_params()
    del params["head.fc.bias"]
    with pytest.raises(UserError,
                       match=r"x\.pdparams: 1 model tensors have no source: head\.fc\.bias"):
        convert_state_dict(params, Toy(), RULES, source="x.pdparams")
    _, report = convert_state_dict(params, Toy(), RULES, expected_missing=[r"^head\.fc\.bias$"])
    assert report.missing == ["head.fc.bias"]


def test_alias_without_a_drop_rule_is_reported():
    with pytest.raises(UserError, match="no destination.*head.cls_0"):
        convert_state_dict(paddle_params(), Toy(), RULES[1:])


def test_class_count_mismatch_names_tensor_shapes_and_nc():
    with pytest.raises(UserError) as err:
        convert_state_dict(paddle_params(num_classes=80), Toy(num_classes=3), RULES,
                           source="coco.pdparams")
    message = str(err.value)
    assert "coco.pdparams" in message and "head.cls.0.weight" in message
    assert "(80, 4)" in message and "(3, 4)" in message and "-nc" in message


def test_checkpoint_of_another_model_is_one_clear_line():
    lcnet = as_paddle(LCNet(0.35).state_dict(), prefix="backbone.")
    with pytest.raises(UserError) as err:
        convert_state_dict(lcnet, Toy(), RULES, source="other.pdparams")
    message = str(err.value)
    assert "\n" not in message
    assert "of 11 model tensors have no source in other.pdparams" in message
    assert "checkpoint of another model" in message


def test_another_scale_is_reported_as_another_model():
    params = as_paddle(LCNet(0.75).state_dict(), prefix="backbone.")
    model = nn.Module()
    model.backbone = LCNet(2.0)
    message = (r"no source in s\.pdparams and \d+ differ in shape: "
               r"is it a checkpoint of another model")
    with pytest.raises(UserError, match=message):
        convert_state_dict(params, model, PICODET_RULES, source="s.pdparams")


def test_only_backbone_takes_an_imagenet_classifier():
    """PaddleClas PP-LCNet files have no ``backbone.`` prefix and a classifier to leave out."""
    model = nn.Module()
    model.backbone = LCNet(0.35)
    model.neck = ConvBN(176, 8, 1)
    params = {k: v + 1 for k, v in as_paddle(model.backbone.state_dict()).items()}
    params.update({"last_conv.weight": np.zeros((1280, 176, 1, 1), np.float32),
                   "fc.weight": np.zeros((1280, 1000), np.float32),
                   "fc.bias": np.zeros(1000, np.float32)})
    with pytest.raises(UserError):
        convert_state_dict(params, model, PICODET_RULES)
    state_dict, report = convert_state_dict(params, model, PICODET_RULES, only_backbone=True)
    assert all(k.startswith("backbone.") for k in state_dict)
    assert len(state_dict) == len(params) - 3
    assert sorted(report.unused) == ["fc.bias", "fc.weight", "last_conv.weight"]
    assert torch.equal(state_dict["backbone.conv1.bn.running_var"],
                       torch.from_numpy(params["conv1.bn._variance"]))


def test_picodet_neck_rules():
    rules = compile_rules(PICODET_RULES)
    assert map_key("neck.conv_t.convs.2.bn._variance", rules) == \
        "neck.lateral_convs.2.bn.running_var"
    assert map_key("neck.downsamples.0.bn1._mean", rules) == \
        "neck.downsamples.0.dw_conv.bn.running_mean"
    assert map_key("neck.top_down_blocks.1.blocks.0.conv2.pwconv.weight", rules) == \
        "neck.top_down_blocks.1.blocks.0.conv2.pw_conv.conv.weight"
    assert map_key("neck.first_top_conv.bn2.bias", rules) == "neck.first_top_conv.pw_conv.bn.bias"
    assert map_key("backbone.blocks6.0.se.conv1.weight", rules) == \
        "backbone.blocks6.0.se.conv1.weight"
    # Neck rules touch neck keys only (the head's DPModule has its own rules).
    assert map_key("head.cls_align.0.bn1.weight", compile_rules(NECK_RULES)) == \
        "head.cls_align.0.bn1.weight"


def test_bad_rule_is_rejected():
    with pytest.raises(ValueError):
        compile_rules([("only a pattern",)])

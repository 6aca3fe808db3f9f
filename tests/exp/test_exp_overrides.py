"""KEY VALUE overrides of exp fields: types, nesting, errors, derived values, the log table."""
import sys
import types

import numpy as np
import pytest

import mmdet_lite.exp
from mmdet_lite.exp import BaseExp, PicoDetExp
from mmdet_lite.utils.errors import UserError


@pytest.fixture
def exp():
    return PicoDetExp()


def test_nested_int_and_float(exp):
    exp.merge(["head.nms.keep_top_k", "50", "head.nms.score_threshold", "0.3"])
    assert exp.head["nms"]["keep_top_k"] == 50 and type(exp.head["nms"]["keep_top_k"]) is int
    assert exp.head["nms"]["score_threshold"] == 0.3
    assert exp.head["nms"]["nms_top_k"] == 1000  # siblings untouched


def test_ints_and_floats(exp):
    exp.merge(["num_classes", "20", "base_lr", "1", "weight_decay", "5e-4", "data_dir", "/data/x"])
    assert exp.num_classes == 20 and type(exp.num_classes) is int
    assert exp.base_lr == 1.0 and type(exp.base_lr) is float
    assert exp.weight_decay == 5e-4
    assert exp.data_dir == "/data/x"
    with pytest.raises(UserError, match=r"num_classes.*'20\.5'"):
        exp.merge(["num_classes", "20.5"])
    with pytest.raises(UserError, match=r"base_lr.*'fast'"):
        exp.merge(["base_lr", "fast"])


@pytest.mark.parametrize("text, value", [("False", False), ("false", False), ("0", False),
                                         ("True", True), ("true", True), ("1", True)])
def test_bool(exp, text, value):
    exp.use_ema = not value
    exp.merge(["use_ema", text])
    assert exp.use_ema is value


def test_bool_rejects_other_words(exp):
    with pytest.raises(UserError, match=r"head\.use_align_head.*'maybe'"):
        exp.merge(["head.use_align_head", "maybe"])


@pytest.mark.parametrize("text", ["320,320", "[320, 320]", "(320,320)", " 320 , 320 "])
def test_tuple_forms(exp, text):
    exp.merge(["test_size", text])
    assert exp.test_size == (320, 320) and type(exp.test_size) is tuple
    assert all(type(v) is int for v in exp.test_size)


def test_lists_take_any_length_and_cast_elements(exp):
    exp.merge(["train_sizes", "320,352", "pixel_mean", "0,0,0", "backbone.feature_maps", "[3, 4]"])
    assert exp.train_sizes == [320, 352] and type(exp.train_sizes) is list
    assert exp.pixel_mean == (0.0, 0.0, 0.0) and all(type(v) is float for v in exp.pixel_mean)
    assert exp.backbone["feature_maps"] == [3, 4]


def test_tuple_length_and_element_errors(exp):
    with pytest.raises(UserError, match=r"test_size.*'416'.*2 values"):
        exp.merge(["test_size", "416"])
    with pytest.raises(UserError, match=r"train_sizes.*'320,abc'"):
        exp.merge(["train_sizes", "320,abc"])


def test_none_fields_take_literals(exp):
    exp.merge(["seed", "42", "warmup.epochs", "3", "head.conv_feat.feat_out", "64"])
    assert exp.seed == 42 and exp.warmup["epochs"] == 3
    assert exp.head_config()["conv_feat"]["feat_out"] == 64
    exp.merge(["seed", "None"])
    assert exp.seed is None


def test_dict_literal_merges_into_the_dict(exp):
    exp.merge(["head.nms", "{'keep_top_k': 10, 'nms_threshold': 0.5}"])
    assert exp.head["nms"] == dict(score_threshold=0.025, nms_top_k=1000, keep_top_k=10,
                                   nms_threshold=0.5)
    with pytest.raises(UserError, match=r"head\.nms.*unknown key 'keep_topk'"):
        exp.merge(["head.nms", "{'keep_topk': 10}"])


def test_unknown_key_names_it_and_close_matches(exp):
    with pytest.raises(UserError) as err:
        exp.merge(["head.nms.keep_topk", "50"])
    message = str(err.value)
    assert "'head.nms.keep_topk'" in message and "did you mean head.nms.keep_top_k" in message
    with pytest.raises(UserError, match=r"'nms\.keep_top_k'.*did you mean head\.nms\.keep_top_k"):
        exp.merge(["nms.keep_top_k", "50"])
    with pytest.raises(UserError, match="'test_size.0'"):
        exp.merge(["test_size.0", "50"])
    with pytest.raises(UserError, match=r"'zzzz'") as err:
        exp.merge(["zzzz", "1"])
    assert "did you mean" not in str(err.value)


def test_odd_number_of_items(exp):
    with pytest.raises(UserError, match="KEY VALUE pairs.*3 items"):
        exp.merge(["num_classes", "20", "seed"])


def test_failed_override_leaves_earlier_pairs_applied_and_field_intact(exp):
    with pytest.raises(UserError):
        exp.merge(["num_classes", "5", "max_epoch", "ten"])
    assert exp.num_classes == 5 and exp.max_epoch == 300


def test_instances_do_not_share_dicts():
    a, b = PicoDetExp(), PicoDetExp()
    a.merge(["head.nms.keep_top_k", "7", "backbone.feature_maps", "3,4"])
    assert b.head["nms"]["keep_top_k"] == 100 and b.backbone["feature_maps"] == [3, 4, 5]


def test_test_size_override_reaches_the_test_transform(exp):
    exp.merge(["test_size", "320,256"])
    image, scale_factor = exp.get_test_transform()(np.zeros((100, 200, 3), np.uint8))
    assert image.shape == (3, 320, 256)
    np.testing.assert_allclose(scale_factor, [3.2, 1.28], rtol=1e-6)


def test_neck_channels_reach_the_head_and_the_model(exp, monkeypatch):
    calls = []
    fake = types.ModuleType("mmdet_lite.models.architectures.picodet")
    fake.build_picodet = lambda **kwargs: calls.append(kwargs) or "model"
    monkeypatch.setitem(sys.modules, fake.__name__, fake)

    exp.merge(["neck.out_channels", "64", "num_classes", "3", "pixel_std", "1,1,1"])
    assert exp.get_model() == "model"
    (kwargs,) = calls
    head = kwargs["head"]
    assert (head["conv_feat"]["feat_in"] == head["conv_feat"]["feat_out"] == head["feat_in_chan"]
            == 64)
    assert kwargs["neck"]["out_channels"] == 64 and kwargs["num_classes"] == 3
    assert kwargs["pixel_std"] == (1.0, 1.0, 1.0)
    assert exp.head["conv_feat"]["feat_out"] is None  # the exp itself keeps "derived"

    exp.merge(["head.conv_feat.feat_out", "32"])
    head = exp.head_config()
    assert (head["conv_feat"]["feat_in"], head["conv_feat"]["feat_out"],
            head["feat_in_chan"]) == (64, 32, 32)


def test_table_lists_every_override_key(exp):
    text = repr(exp)
    assert text.splitlines()[0] == "PicoDetExp 'picodet_base'"
    for key in ("num_classes", "head.nms.keep_top_k", "head.conv_feat.num_convs", "test_size",
                "train_transforms.RandomFlip.prob", "output_dir"):
        assert f"| {key} " in text
    assert "'./outputs'" in text


# Read by the trainer and the tools; BaseExp declares them with their defaults.
TRAINER_FIELDS = dict(class_names=None, train_batch_size=8, eval_batch_size=8, data_num_workers=4,
                      snapshot_epoch=1, use_ema=False, ema_decay=0.9998, ema_decay_type="threshold",
                      ema_cycle_epoch=-1, ema_black_list=None, ema_filter_no_grad=False,
                      clip_grad_norm=None, find_unused_parameters=False, sync_bn=False,
                      skip_bad_images=False)


@pytest.mark.parametrize("family", ["BaseExp", "PicoDetExp", "RTDETRExp", "RTMDetExp"])
def test_trainer_fields_are_overridable_in_every_family(family):
    exp = getattr(mmdet_lite.exp, family)()
    assert set(TRAINER_FIELDS) <= set(exp.fields())
    exp.merge(["clip_grad_norm", "0.5", "ema_cycle_epoch", "3", "ema_black_list", "['num_batches']",
               "class_names", "['a', 'b']", "sync_bn", "true", "data_num_workers", "0"])
    assert (exp.clip_grad_norm, exp.ema_cycle_epoch, exp.ema_black_list) == \
        (0.5, 3, ["num_batches"])
    assert (exp.class_names, exp.sync_bn, exp.data_num_workers) == (["a", "b"], True, 0)
    exp.merge(["clip_grad_norm", "None"])
    assert exp.clip_grad_norm is None


def test_base_exp_fields_and_save_dir():
    base = BaseExp()
    assert set(base.fields()) == {
        "exp_name", "num_classes", "data_dir", "train_ann", "val_ann", "train_image_folder",
        "val_image_folder", "input_size", "test_size", "max_epoch", "output_dir", "print_interval",
        "eval_interval", "seed", "train_transforms", "train_sizes", "mosaic_epoch",
        "experiment_name", *TRAINER_FIELDS}
    assert {name: getattr(base, name) for name in TRAINER_FIELDS} == TRAINER_FIELDS
    base.merge(["output_dir", "/tmp/out", "exp_name", "run1"])
    assert base.save_dir == "/tmp/out/run1"
    base.merge(["experiment_name", "run1_2"])  # a run folder of its own (tools/train.py -expn)
    assert base.save_dir == "/tmp/out/run1_2"


def test_tuple_fields_take_their_elements_as_separate_items(exp):
    exp.merge(["input_size", "192", "192", "test_size", "160", "192", "num_classes", "2"])
    assert (exp.input_size, exp.test_size, exp.num_classes) == ((192, 192), (160, 192), 2)
    exp.merge(["test_size", "224,224", "max_epoch", "5"])
    assert (exp.test_size, exp.max_epoch) == ((224, 224), 5)
    with pytest.raises(UserError, match="test_size.*expected 2 values"):
        exp.merge(["test_size", "192", "max_epoch", "5"])
    with pytest.raises(UserError, match="KEY VALUE pairs"):
        exp.merge(["max_epoch", "5", "test_size"])

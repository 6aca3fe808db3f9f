"""Every mmdet RTMDet exp equals mmdet 3.3.0's config as mmengine merges it, field by field.

One reference process (tests/reference/mmdet_dump_config.py) loads the five config files with
``Config.fromfile`` and completes every ``type=`` dict with its class's defaults; each exp is put
in the same shape (tests/exp/rtmdet_views.py) and compared section by section.
"""
import json

import pytest
import torch

from mmdet_lite.exp import RTMDetExp, build_exp, get_exp
from mmdet_lite.utils.errors import UserError

from config_compare import config_mismatches
from conftest import REPO_ROOT, mmdet_site, run_mmdet
from rtmdet_views import (
    IGNORED,
    eval_pipeline_view,
    model_view,
    pipeline_view,
    schedule_view,
    without,
)

REFERENCE = REPO_ROOT / "tests/reference/mmdet_dump_config.py"
NAMES = ["rtmdet_tiny_8xb32-300e_coco", "rtmdet_s_8xb32-300e_coco", "rtmdet_m_8xb32-300e_coco",
         "rtmdet_l_8xb32-300e_coco", "rtmdet_x_8xb32-300e_coco"]


def config_dir():
    from pathlib import Path

    return Path(mmdet_site()) / "mmdet/.mim/configs/rtmdet"


@pytest.fixture(scope="module")
def mmdet_dumps():
    return json.loads(run_mmdet(REFERENCE, *[config_dir() / f"{name}.py" for name in NAMES]))


def exp_of(name):
    return get_exp(REPO_ROOT / "exps/rtmdet" / f"{name}.py")


def assert_same(section, ours, theirs):
    mismatches = config_mismatches(ours, theirs, reference="mmdet")
    assert not mismatches, f"{section} differs from mmdet's config:\n" + "\n".join(mismatches)


def by_step(steps):
    """A pipeline as ``{"<index>:<type>": step}``, so mismatches name the argument."""
    return {f"{i}:{step['type']}": step for i, step in enumerate(steps)}


def middle(steps):
    """A train pipeline without mmdet's loading steps and ``PackDetInputs`` (checked apart)."""
    assert [s["type"] for s in steps[:2]] == ["LoadImageFromFile", "LoadAnnotations"]
    assert steps[0]["imdecode_backend"] == "cv2" and steps[0]["color_type"] == "color"
    assert steps[1]["with_bbox"] is True and steps[1]["with_mask"] is False
    assert steps[-1]["type"] == "PackDetInputs"
    return steps[2:-1]


def test_the_five_mmdet_configs_exist():
    names = sorted(p.stem for p in config_dir().glob("rtmdet_*_8xb32-300e_coco.py"))
    assert names == sorted(NAMES)
    ours = (REPO_ROOT / "exps/rtmdet").glob("rtmdet_*_8xb32-300e_coco.py")
    assert sorted(p.stem for p in ours) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_model_equals_mmdet(name, mmdet_dumps):
    exp, model = exp_of(name), mmdet_dumps[name]["model"]
    theirs = {"type": model["type"], "data_preprocessor": model["data_preprocessor"],
              "backbone": without(model["backbone"]), "neck": without(model["neck"]),
              "bbox_head": without(model["bbox_head"]), "assigner": model["assigner"],
              "test_cfg": model["test_cfg"]}
    assert_same("model", model_view(exp), theirs)
    assert model["train_cfg"] == {"assigner": {"type": "DynamicSoftLabelAssigner", "topk": 13},
                                  "allowed_border": -1, "pos_weight": -1, "debug": False}
    assert model["bbox_head"]["train_cfg"] is None and model["bbox_head"]["test_cfg"] is None
    assert set(model["backbone"]) - set(IGNORED) - {"type"} == \
        set(model_view(exp)["backbone"]) - {"type"}


@pytest.mark.parametrize("name", NAMES)
def test_pipelines_equal_mmdet(name, mmdet_dumps):
    exp, dump = exp_of(name), mmdet_dumps[name]
    assert_same("train_pipeline", by_step(pipeline_view(exp)),
                by_step(middle(dump["train_pipeline"])))
    switch = dump["pipeline_switch_hook"]
    assert_same("train_pipeline_stage2", by_step(pipeline_view(exp, stage2=True)),
                by_step(middle(switch["switch_pipeline"])))
    assert switch["switch_epoch"] == exp.stage2_epoch == exp.max_epoch - exp.stage2_num_epochs
    test_steps = dump["test_pipeline"]
    assert [s["type"] for s in test_steps] == ["LoadImageFromFile", "Resize", "Pad",
                                               "LoadAnnotations", "PackDetInputs"]
    assert_same("test_pipeline", by_step(eval_pipeline_view(exp)), by_step(test_steps[1:3]))
    transform = exp.get_test_transform()
    assert transform.keep_ratio and transform.target_size == exp.test_size
    assert transform.interp == 1  # cv2.INTER_LINEAR: mmcv's 'bilinear'


@pytest.mark.parametrize("name", NAMES)
def test_schedule_hooks_and_loaders_equal_mmdet(name, mmdet_dumps):
    exp, dump = exp_of(name), mmdet_dumps[name]
    ours = schedule_view(exp)
    assert_same("schedule", ours, {
        "optimizer": dump["optim_wrapper"]["optimizer"],
        "param_scheduler": dump["param_scheduler"], "ema_hook": dump["ema_hook"],
        "ema_gamma": dump["ema"]["gamma"]})
    assert dump["optim_wrapper"]["type"] == "OptimWrapper"
    assert dump["optim_wrapper"]["paramwise_cfg"] == {"norm_decay_mult": 0, "bias_decay_mult": 0,
                                                      "bypass_duplicate": True}
    adamw = torch.optim.AdamW([torch.zeros(1)]).defaults  # mmengine builds torch's AdamW
    assert (tuple(adamw["betas"]), adamw["eps"]) == (exp.adamw_betas, exp.adamw_eps)
    assert dump["ema"]["interval"] == 1 and exp.use_ema and exp.ema_decay_type == "exp_momentum"
    # 8xb32: base_lr is for 256 images; mmdet itself does not rescale (auto_scale_lr off).
    assert exp.train_batch_size * exp.ref_num_devices == 256
    assert dump["auto_scale_lr"]["enable"] is False
    assert dump["train_cfg"] == {"type": "EpochBasedTrainLoop", "max_epochs": exp.max_epoch,
                                 "val_interval": exp.eval_interval,
                                 "dynamic_intervals": [[exp.stage2_epoch,
                                                        exp.stage2_eval_interval]]}
    assert dump["checkpoint_hook"] == {"type": "CheckpointHook", "interval": exp.snapshot_epoch,
                                       "max_keep_ckpts": exp.max_keep_ckpts}
    assert dump["logger_hook"]["interval"] == exp.print_interval
    assert dump["train_dataloader"] == {"batch_size": exp.train_batch_size,
                                        "num_workers": exp.data_num_workers}
    assert dump["val_dataloader"]["batch_size"] == exp.eval_batch_size
    for split, prefix in (("dataset", "train"), ("val_dataset", "val")):
        assert dump[split]["ann_file"] == getattr(exp, f"{prefix}_ann")
        assert dump[split]["data_prefix"] == {"img": getattr(exp, f"{prefix}_image_folder") + "/"}


def test_the_reference_dump_is_mmengines_merge(mmdet_dumps):
    """Guard the reference: values only the ``_base_`` merge and the class defaults produce."""
    tiny = mmdet_dumps["rtmdet_tiny_8xb32-300e_coco"]
    assert tiny["model"]["backbone"]["deepen_factor"] == 0.167                # own file
    assert tiny["model"]["bbox_head"]["exp_on_reg"] is False                   # from _s_
    assert tiny["model"]["bbox_head"]["share_conv"] is True                    # from _l_
    assert tiny["model"]["assigner"]["soft_center_radius"] == 3.0              # class default
    assert tiny["train_pipeline"][2]["center_ratio_range"] == [0.5, 1.5]       # Mosaic's default
    assert tiny["pipeline_switch_hook"]["switch_pipeline"][2]["ratio_range"] == [0.5, 2.0]  # _s_
    large = mmdet_dumps["rtmdet_l_8xb32-300e_coco"]
    assert large["train_pipeline"][2]["max_cached_images"] == 40               # class default
    assert large["train_dataloader"]["batch_size"] == 32                       # over _base_'s 2


@pytest.mark.parametrize("name", NAMES)
def test_names_with_dashes_load_by_name_and_path(name):
    by_name = build_exp(name, ["num_classes", "3"])
    assert isinstance(by_name, RTMDetExp) and by_name.exp_name == name
    assert by_name.num_classes == 3
    assert get_exp(None, name).exp_name == exp_of(name).exp_name == name


def test_sizes_follow_input_size_overrides():
    exp = build_exp("rtmdet_tiny_8xb32-300e_coco",
                    ["input_size", "192", "192", "test_size", "192", "192", "max_epoch", "150"])
    stage1, stage2 = exp.train_pipeline(), exp.train_pipeline(stage2=True)
    assert stage1["CachedMosaic"]["img_scale"] == stage1["RandomCrop"]["crop_size"] == (192, 192)
    assert stage1["RandomResize"]["scale"] == (384, 384) and stage2["RandomResize"]["scale"] == \
        (192, 192)
    assert stage1["Pad"]["size"] == stage2["Pad"]["size"] == stage1["CachedMixUp"]["img_scale"]
    assert exp.stage2_epoch == 130 and exp.lr_decay_config()["max_epochs"] == 150
    assert exp.get_test_transform().target_size == (192, 192)
    assert exp.train_transforms["RandomResize"]["scale"] == 2  # the field itself is untouched


def test_train_size_must_be_a_multiple_of_32():
    exp = build_exp("rtmdet_tiny_8xb32-300e_coco", ["input_size", "200", "192"])
    with pytest.raises(UserError, match=r"rtmdet_tiny_8xb32-300e_coco: input_size \(200, 192\) "
                                        "must be multiples of 32"):
        exp.train_pipeline()


def test_score_and_nms_thresholds():
    exp = RTMDetExp()
    assert exp.get_score_threshold() == 0.001
    exp.set_score_threshold(0.3)
    exp.set_nms_threshold(0.5)
    assert (exp.test_cfg["score_thr"], exp.test_cfg["iou_threshold"]) == (0.3, 0.5)


def test_no_weight_decay_on_norms_and_biases_only():
    """mmengine's ``norm_decay_mult=0, bias_decay_mult=0``: every norm parameter and bias."""
    from mmdet_lite.exp.rtmdet_base import norm_and_bias_patterns
    from mmdet_lite.solver import param_groups

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.BatchNorm2d(4),
                                torch.nn.Conv2d(4, 2, 1), torch.nn.GroupNorm(1, 2))
    groups = {g["weight_decay"]: g["names"]
              for g in param_groups(model, 0.05, norm_and_bias_patterns(model))}
    assert groups == {0.05: ["0.weight", "2.weight"],
                      0.0: ["1.weight", "1.bias", "2.bias", "3.weight", "3.bias"]}

"""SSCMA's two RTMDet-nano exps equal SSCMA's configs, transcribed in tests/fixtures/sscma/*.json.

SSCMA's config files import ``sscma`` (mmengine cannot load them without it), so their values were
transcribed by hand into the fixtures (each names the repository commit and path). SSCMA builds
mmyolo's modules, whose neck and head take the depth/width factors themselves: the test applies
mmyolo's formulas (``round(n * deepen)``, ``int(c * widen)``) to the raw values.
"""
import json

import pytest

from mmdet_lite.exp import build_exp, get_exp
from mmdet_lite.exp.rtmdet_sscma import SSCMA_SOURCE

from conftest import REPO_ROOT
from rtmdet_views import ACT_CFG, CSPNEXT_WIDTHS, TRANSFORM_FIXED, wh

NAMES = ["rtmdet_nano_8xb32_300e_coco_relu", "rtmdet_nano_8xb32_300e_coco_ncadc_relu6"]
FIXTURES = REPO_ROOT / "tests/fixtures/sscma"
# SSCMA transform name -> the exp's (mmdet's name, or the YOLOv5 MixUp the nano recipe needs).
TRANSFORM_NAMES = {"Mosaic": "CachedMosaic", "HSVRandomAug": "YOLOXHSVRandomAug",
                   "MixUp": "YOLOv5MixUp"}


def sscma(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


def exp_of(name):
    return get_exp(REPO_ROOT / "exps/rtmdet" / f"{name}.py")


def act(cfg):
    return {"type": cfg["type"], "inplace": cfg["inplace"]}


def sscma_steps(steps, defaults):
    """SSCMA's pipeline steps between loading and packing as ``{exp name: kwargs}`` (class
    defaults filled in, ``use_cached`` dropped: the exp's transforms are the cached ones)."""
    out = {}
    for step in steps[2:-1]:
        step = dict(step)
        sscma_type = step.pop("type")
        assert step.pop("use_cached", True) is True
        out[TRANSFORM_NAMES.get(sscma_type, sscma_type)] = {**defaults.get(sscma_type, {}),
                                                            **step}
    return out


def exp_steps(exp, stage2):
    """The exp's resolved pipeline in SSCMA's shape: sizes ``[w, h]``, lists for tuples."""
    out = {}
    for name, kwargs in exp.train_pipeline(stage2).items():
        out[name] = json.loads(json.dumps(
            {k: wh(v) if k in ("img_scale", "scale", "crop_size", "size") else v
             for k, v in kwargs.items()}))
    return out


def assert_same_pipeline(exp_pipeline, sscma_pipeline):
    """Same transforms in the same order; every SSCMA argument equals the exp's (with the values
    the family fixes, ``TRANSFORM_FIXED``); every exp argument is one SSCMA states or fixed."""
    assert list(exp_pipeline) == list(sscma_pipeline)
    for name, theirs in sscma_pipeline.items():
        ours = {**TRANSFORM_FIXED.get(name, {}), **exp_pipeline[name]}
        assert {k: ours.get(k, "<missing>") for k in theirs} == theirs, name
        assert set(exp_pipeline[name]) <= set(theirs), name


@pytest.mark.parametrize("name", NAMES)
def test_fixture_names_its_source(name):
    source = sscma(name)["source"]
    assert source["repository"] == SSCMA_SOURCE
    assert source["path"] == f"configs/rtmdet/{name}.py"


@pytest.mark.parametrize("name", NAMES)
def test_model_equals_sscma(name):
    exp, cfg = exp_of(name), sscma(name)
    model, defaults = cfg["model"], cfg["class_defaults"]
    pre, bb, neck = model["data_preprocessor"], model["backbone"], model["neck"]
    assert (list(exp.pixel_mean), list(exp.pixel_std)) == (pre["mean"], pre["std"])
    assert exp.channel_order == ("rgb" if pre["bgr_to_rgb"] else "bgr")
    ours = exp.backbone
    assert (ours["arch"], ours["deepen_factor"], ours["widen_factor"], ours["expand_ratio"]) == \
        (bb["arch"], bb["deepen_factor"], bb["widen_factor"], bb["expand_ratio"])
    assert ours["channel_attention"] is bb["channel_attention"]
    assert ours["split_max_pool"] is bb["split_max_pool_kernel"]
    assert list(ours["spp_kernel_sizes"]) == defaults["CSPNeXt"]["spp_kernel_sizes"]
    for section in ("backbone", "neck"):
        assert ACT_CFG[getattr(exp, section)["act"]] == act(model[section]["act_cfg"])
        assert model[section]["norm_cfg"] == {"type": "BatchNorm2d"}  # eps 1e-5, momentum 0.1
    # mmyolo's CSPNeXtPAFPN: channels x widen_factor, blocks round(n x deepen_factor).
    widen, deepen = neck["widen_factor"], neck["deepen_factor"]
    assert [int(c * widen) for c in neck["in_channels"]] == \
        [int(c * ours["widen_factor"]) for c in CSPNEXT_WIDTHS]
    assert exp.neck["out_channels"] == int(neck["out_channels"] * widen)
    assert exp.neck["num_csp_blocks"] == round(neck["num_csp_blocks"] * deepen)
    assert exp.neck["expand_ratio"] == neck["expand_ratio"]

    head = model["bbox_head"]["head_module"]
    assert int(head["in_channels"] * head["widen_factor"]) == exp.neck["out_channels"]
    assert exp.head["feat_channels"] == int(head["feat_channels"] * head["widen_factor"])
    assert (exp.head["stacked_convs"], exp.head["share_conv"], exp.head["pred_kernel_size"]) == \
        (head["stacked_convs"], head["share_conv"], head["pred_kernel_size"])
    assert list(exp.head["strides"]) == head["featmap_strides"] == \
        model["bbox_head"]["prior_generator"]["strides"]
    assert exp.head["exp_on_reg"] is False  # mmyolo's head decodes distance x stride, no exp
    assert ACT_CFG[exp.head["act"]] == act(head["act_cfg"])

    loss = model["bbox_head"]
    assert exp.loss["loss_cls"] == {"beta": loss["loss_cls"]["beta"],
                                    "loss_weight": loss["loss_cls"]["loss_weight"]}
    assert exp.loss["loss_bbox"] == {"loss_weight": loss["loss_bbox"]["loss_weight"]}
    assigner = model["train_cfg"]["assigner"]
    assert exp.loss["assigner"] == {"topk": assigner["topk"],
                                    **defaults["BatchDynamicSoftLabelAssigner"]}
    test = model["test_cfg"]
    assert exp.test_cfg == {"nms_pre": test["nms_pre"], "min_bbox_size": test["min_bbox_size"],
                            "score_thr": test["score_thr"],
                            "iou_threshold": test["nms"]["iou_threshold"],
                            "max_per_img": test["max_per_img"]}


@pytest.mark.parametrize("name", NAMES)
def test_pipelines_equal_sscma(name):
    exp, cfg = exp_of(name), sscma(name)
    defaults = cfg["class_defaults"]
    assert_same_pipeline(exp_steps(exp, False), sscma_steps(cfg["train_pipeline"], defaults))
    assert_same_pipeline(exp_steps(exp, True),
                         sscma_steps(cfg["train_pipeline_stage2"], defaults))
    resize, pad = cfg["test_pipeline"][2:4]
    transform = exp.get_test_transform()
    assert resize == {"type": "Resize", "scale": wh(exp.test_size), "keep_ratio": True}
    assert transform.keep_ratio and transform.target_size == exp.test_size
    assert pad["pad_val"] == {"img": [exp.pad_val] * 3} and pad["size"] == wh(exp.test_size)
    for step in cfg["train_pipeline"][:2]:  # both decoders give BGR (mmcv's channel_order)
        assert step["imdecode_backend"] in ("cv2", "pillow")


@pytest.mark.parametrize("name", NAMES)
def test_schedule_and_loaders_equal_sscma(name):
    exp, cfg = exp_of(name), sscma(name)
    optimizer = cfg["optim_wrapper"]["optimizer"]
    assert (exp.base_lr, exp.weight_decay) == (optimizer["lr"], optimizer["weight_decay"])
    assert cfg["optim_wrapper"]["paramwise_cfg"] == {"norm_decay_mult": 0, "bias_decay_mult": 0,
                                                     "bypass_duplicate": True}
    # auto_scale_lr: base_lr belongs to ONE batch of 32; the trainer scales from there.
    assert cfg["auto_scale_lr"]["enable"] is True
    assert exp.train_batch_size * exp.ref_num_devices == cfg["auto_scale_lr"]["base_batch_size"]
    warmup, cosine = cfg["param_scheduler"]
    assert (exp.warmup["start_factor"], exp.warmup["end"]) == \
        (warmup["start_factor"], warmup["end"])
    decay = exp.lr_decay_config()
    assert (decay["max_epochs"] // 2, decay["max_epochs"]) == (cosine["begin"], cosine["end"])
    assert exp.base_lr * decay["min_lr_ratio"] == cosine["eta_min"]
    ema, switch = cfg["custom_hooks"]
    assert (exp.ema_momentum, exp.ema_gamma) == (ema["momentum"],
                                                 cfg["class_defaults"]["ExpMomentumEMA"]["gamma"])
    assert ema["update_buffers"] is True and exp.ema_decay_type == "exp_momentum"
    assert switch["switch_epoch"] == exp.stage2_epoch
    train_cfg = cfg["train_cfg"]
    assert (exp.max_epoch, exp.eval_interval) == (train_cfg["max_epochs"],
                                                  train_cfg["val_interval"])
    assert train_cfg["dynamic_intervals"] == [[exp.stage2_epoch, exp.stage2_eval_interval]]
    hooks = cfg["default_hooks"]
    assert (exp.snapshot_epoch, exp.max_keep_ckpts) == (hooks["checkpoint"]["interval"],
                                                        hooks["checkpoint"]["max_keep_ckpts"])
    assert exp.print_interval == hooks["logger"]["interval"]
    assert (exp.train_batch_size, exp.data_num_workers) == \
        (cfg["train_dataloader"]["batch_size"], cfg["train_dataloader"]["num_workers"])
    assert exp.eval_batch_size == cfg["val_dataloader"]["batch_size"]
    assert (exp.train_ann, exp.train_image_folder + "/") == \
        (cfg["dataset"]["ann_file"], cfg["dataset"]["data_prefix"]["img"])
    assert (exp.val_ann, exp.val_image_folder + "/") == \
        (cfg["val_dataset"]["ann_file"], cfg["val_dataset"]["data_prefix"]["img"])


def test_sscma_mask_command_at_192():
    """``../shared/seeds/004``'s overrides as KEY VALUE pairs (imgsz -> input/test size)."""
    exp = build_exp("rtmdet_nano_8xb32_300e_coco_ncadc_relu6",
                    ["data_dir", "datasets/coco_mask/mask", "num_classes", "2",
                     "train_ann", "train/_annotations.coco.json",
                     "val_ann", "valid/_annotations.coco.json",
                     "train_image_folder", "train", "val_image_folder", "valid",
                     "max_epoch", "150", "input_size", "192", "192", "test_size", "192", "192"])
    assert (exp.num_classes, exp.max_epoch, exp.input_size) == (2, 150, (192, 192))
    stage1, stage2 = exp.train_pipeline(), exp.train_pipeline(stage2=True)
    assert stage1["CachedMosaic"]["img_scale"] == stage1["Pad"]["size"] == (192, 192)
    assert stage1["RandomResize"]["scale"] == stage2["RandomResize"]["scale"] == (384, 384)
    assert exp.stage2_epoch == 130 and exp.lr_decay_config()["max_epochs"] == 150
    assert exp.get_test_transform().target_size == (192, 192)

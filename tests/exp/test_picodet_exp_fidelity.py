"""Every PicoDet exp equals PaddleDetection's config as ppdet itself merges it
(``_BASE_`` included).

One Paddle subprocess dumps all configs (tests/reference/paddle_dump_config.py); each exp is turned
into the same shape (its fields plus the values the family fixes) and compared section by section.
"""
import json

import pytest

from mmdet_lite.exp import get_exp

from config_compare import config_mismatches
from conftest import PADDLE_CONFIGS, REPO_ROOT, run_paddle

REFERENCE = REPO_ROOT / "tests/reference/paddle_dump_config.py"
CONFIGS = sorted((PADDLE_CONFIGS / "picodet").glob("picodet_*.yml"))
NAMES = [p.stem for p in CONFIGS]

# Paddle arguments the family fixes instead of exposing as fields.
NECK_FIXED = dict(kernel_size=5, spatial_scales=[0.125, 0.0625, 0.03125])
HEAD_FIXED = dict(dgqp_module=None, nms_pre=1000)
SUBMODULES = {  # head key -> (Paddle class, fixed arguments)
    "conv_feat": ("PicoFeat", {}),
    "static_assigner": ("ATSSAssigner", dict(eps=1e-9, sm_use=False)),
    "assigner": ("TaskAlignedAssigner", dict(eps=1e-9, is_close_gt=False)),
    "loss_class": ("VarifocalLoss", dict(reduction="mean")),
    "loss_dfl": ("DistributionFocalLoss", dict(reduction="mean")),
    "loss_bbox": ("GIoULoss", dict(eps=1e-10, reduction="none")),
    "nms": ("MultiClassNMS", dict(normalized=True, nms_eta=1.0, return_index=False,
                                  return_rois_num=True, trt=False)),
}


def as_json(value):
    return json.loads(json.dumps(value))


def paddle_view(exp):
    """The exp in the shape of the Paddle dump (the ``effective`` module arguments and sections)."""
    head = exp.head_config()
    view_head = {k: v for k, v in head.items() if k not in SUBMODULES}
    for key, (name, fixed) in SUBMODULES.items():
        view_head[key] = {"name": name, **head[key], **fixed}
    view_head["static_assigner"]["num_classes"] = exp.num_classes
    view_head.update(HEAD_FIXED, num_classes=exp.num_classes, eval_size=exp.test_size)

    normalize = {"is_scale": True, "mean": exp.pixel_mean, "std": exp.pixel_std}
    eval_transforms = [
        {"Decode": {}},
        {"Resize": {"interp": 2, "keep_ratio": False, "target_size": exp.test_size}},
        {"NormalizeImage": normalize},
        {"Permute": {}},
    ]
    train_reader = {
        "batch_size": exp.train_batch_size, "shuffle": True, "drop_last": True,
        "sample_transforms": [{"Decode": {}}] + [{k: v} for k, v in exp.train_transforms.items()],
        "batch_transforms": [
            {"BatchRandomResize": {"target_size": exp.train_sizes, "random_size": True,
                                   "random_interp": True, "keep_ratio": False}},
            {"NormalizeImage": normalize}, {"Permute": {}}, {"PadGT": {}}],
    }
    train_reader["mosaic_epoch"] = exp.mosaic_epoch
    effective = {
        "architecture": {"backbone": "LCNet", "neck": exp.neck["name"], "head": "PicoHeadV2"},
        "backbone": exp.backbone,
        "neck": {**{k: v for k, v in exp.neck.items() if k != "name"}, **NECK_FIXED},
        "head": view_head,
        "LearningRate": {"base_lr": exp.base_lr,
                         "schedulers": [{**exp.lr_decay, "use_warmup": True}, exp.warmup]},
        "OptimizerBuilder": {"clip_grad_by_norm": None, "clip_grad_by_value": None,
                             "optimizer": {"type": "Momentum", "momentum": exp.momentum},
                             "regularizer": {"type": "L2", "factor": exp.weight_decay}},
        "ema": {"ema_decay": exp.ema_decay, "ema_decay_type": exp.ema_decay_type,
                "cycle_epoch": exp.ema_cycle_epoch},
    }
    sections = {
        "effective": effective,
        "num_classes": exp.num_classes,
        "epoch": exp.max_epoch,
        "snapshot_epoch": exp.snapshot_epoch,
        "use_ema": exp.use_ema,
        "log_iter": exp.print_interval,
        "eval_size": exp.test_size,
        "TrainReader": train_reader,
        "EvalReader": {"batch_size": exp.eval_batch_size, "shuffle": False,
                       "sample_transforms": eval_transforms,
                       "batch_transforms": [{"PadBatch": {"pad_to_stride": 32}}]},
        "TestReader": {"batch_size": 1, "sample_transforms": eval_transforms,
                       "inputs_def": {"image_shape": [1, 3, *exp.test_size]}},
    }
    return as_json(sections)


def with_ppdet_defaults(dump):
    """The dump with the defaults ppdet uses for keys that a YAML may leave out."""
    dump = json.loads(json.dumps(dump))
    dump["TrainReader"].setdefault("mosaic_epoch", -1)  # DetDataset: kwargs.get('mosaic_epoch', -1)
    return dump


@pytest.fixture(scope="module")
def paddle_dumps(paddle_configs):
    assert len(CONFIGS) == 10, f"expected the 10 PicoDet configs, found {NAMES}"
    return json.loads(run_paddle(REFERENCE, *CONFIGS))


@pytest.mark.parametrize("name", NAMES)
def test_exp_equals_merged_paddle_config(name, paddle_dumps):
    exp = get_exp(REPO_ROOT / "exps/picodet" / f"{name}.py")
    paddle = with_ppdet_defaults(paddle_dumps[name])
    ours = paddle_view(exp)
    mismatches = config_mismatches(ours, {key: paddle[key] for key in ours})
    assert not mismatches, f"{name} differs from the merged YAML:\n" + "\n".join(mismatches)

    # Plain fields with a Paddle counterpart outside the module arguments.
    assert exp.input_size == tuple(paddle["eval_size"])
    assert exp.eval_interval == paddle["snapshot_epoch"]  # Paddle evaluates at each snapshot
    assert exp.lr_decay["max_epochs"] >= exp.max_epoch
    for split in ("Train", "Eval"):
        dataset = paddle[f"{split}Dataset"]
        assert getattr(exp, f"{split.lower()}_ann".replace("eval", "val")) == dataset["anno_path"]
        assert getattr(exp, f"{split.lower()}_image_folder".replace("eval", "val")) == \
            dataset["image_dir"]


def test_the_dump_is_paddles_deep_merge(paddle_dumps):
    """Guard the reference itself: values that only the ``_BASE_`` merge can produce."""
    s416 = paddle_dumps["picodet_s_416_coco_lcnet"]
    assert s416["effective"]["head"]["conv_feat"]["num_convs"] == 2       # own file
    assert s416["effective"]["head"]["static_assigner_epoch"] == 100      # picodet_v2.yml
    assert s416["effective"]["OptimizerBuilder"]["regularizer"]["factor"] == 4e-5  # optimizer_300e
    assert s416["EvalReader"]["sample_transforms"][1]["Resize"]["target_size"] == [416, 416]
    npu = paddle_dumps["picodet_s_416_coco_npu"]
    assert npu["effective"]["backbone"]["act"] == "relu6"
    # ppdet's global config is reset between configs: npu's relu6 must not leak.
    assert paddle_dumps["picodet_xs_320_coco_lcnet"]["effective"]["backbone"]["act"] == "hard_swish"

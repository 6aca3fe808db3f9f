"""Every SOLOv2 exp equals PaddleDetection's config as ppdet 2.6.0 merges it (``_BASE_`` included).

One Paddle subprocess dumps the four configs (tests/reference/paddle_dump_solov2_config.py) with
the module arguments ppdet's ``create`` passes (defaults, shared values, YAML); each exp is turned
into the same shape (its fields plus what the family fixes or derives) and compared key by key.
"""
import json

import pytest
import torch

from mmdet_lite.exp import SOLOv2Exp, get_exp
from mmdet_lite.utils.errors import UserError

from config_compare import config_mismatches
from conftest import PADDLE_CONFIGS, REPO_ROOT, run_paddle

REFERENCE = REPO_ROOT / "tests/reference/paddle_dump_solov2_config.py"
CONFIGS = sorted((PADDLE_CONFIGS / "solov2").glob("solov2_*.yml"))
NAMES = [p.stem for p in CONFIGS]
EXPS = REPO_ROOT / "exps/solov2"

# Paddle arguments the family fixes (or derives) instead of exposing as fields.
FIXED = {
    "backbone": dict(ch_in=64, groups=1, base_width=64, std_senet=False),
    "neck": dict(use_c5=True, norm_decay=0.0, freeze_norm=False, relu_before_extra_convs=True),
    "solov2_head": dict(norm_type="gn"),
    "mask_head": dict(norm_type="gn"),
}


def as_json(value):
    return json.loads(json.dumps(value))


def paddle_view(exp):
    """The exp in the shape of the Paddle dump (``effective`` module arguments and sections)."""
    backbone = {k: v for k, v in exp.backbone.items() if k != "name"}
    neck = {k: v for k, v in exp.neck.items() if k != "name"}
    loss = {k: v for k, v in exp.loss.items() if k != "name"}
    head = {**exp.head, **FIXED["solov2_head"], "num_classes": exp.num_classes,
            "in_channels": exp.neck["out_channel"],
            "solov2_loss": {"name": exp.loss["name"], **loss},
            "mask_nms": {"name": "MaskMatrixNMS", **exp.mask_nms}}
    mask_head = {**exp.mask_head, **FIXED["mask_head"], "in_channels": exp.neck["out_channel"]}
    normalize = {"is_scale": True, "mean": list(exp.pixel_mean), "std": list(exp.pixel_std)}
    pad_batch = {"PadBatch": {"pad_to_stride": exp.pad_to_stride}}
    eval_transforms = [{"Decode": {}}, {"NormalizeImage": normalize},
                       {"Resize": {"interp": 1, "target_size": list(exp.test_size),
                                   "keep_ratio": True}},
                       {"Permute": {}}]
    eval_reader = {"batch_size": exp.eval_batch_size, "shuffle": False, "drop_last": False,
                   "sample_transforms": eval_transforms, "batch_transforms": [pad_batch]}
    train_reader = {
        "batch_size": exp.train_batch_size, "shuffle": True, "drop_last": True,
        "sample_transforms": [{"Decode": {}}, {"Poly2Mask": {}}]
        + [{k: v} for k, v in exp.train_transforms.items()]
        + [{"NormalizeImage": normalize}, {"Permute": {}}],
        "batch_transforms": [pad_batch, {"Gt2Solov2Target": exp.solov2_targets}]}
    decay = dict(exp.lr_decay)
    decay.update(values=None, gamma=[decay["gamma"] / 10 ** i
                                     for i in range(len(decay["milestones"]))])
    effective = {
        "architecture": {"backbone": exp.backbone["name"], "neck": exp.neck["name"],
                         "solov2_head": "SOLOv2Head", "mask_head": "SOLOv2MaskHead"},
        "backbone": {**backbone, **FIXED["backbone"]},
        "neck": {**neck, **FIXED["neck"]},
        "solov2_head": head,
        "mask_head": mask_head,
        "LearningRate": {"base_lr": exp.base_lr, "schedulers": [decay, exp.warmup]},
        "OptimizerBuilder": {"clip_grad_by_norm": exp.clip_grad_norm, "clip_grad_by_value": None,
                             "optimizer": {"type": "Momentum", "momentum": exp.momentum},
                             "regularizer": {"type": "L2", "factor": exp.weight_decay}},
        "ema": {"ema_decay": exp.ema_decay,
                "ema_decay_type": exp.ema_decay_type, "cycle_epoch": exp.ema_cycle_epoch},
    }
    return as_json({
        "effective": effective, "num_classes": exp.num_classes, "epoch": exp.max_epoch,
        "snapshot_epoch": exp.snapshot_epoch, "log_iter": exp.print_interval,
        "worker_num": exp.data_num_workers, "TrainReader": train_reader,
        "EvalReader": eval_reader, "TestReader": eval_reader,
        "TrainDataset": {"image_dir": exp.train_image_folder, "anno_path": exp.train_ann},
        "EvalDataset": {"image_dir": exp.val_image_folder, "anno_path": exp.val_ann},
    })


def paddle_sections(dump, ours):
    """The dump's keys that ``ours`` has (datasets: only the fields an exp carries)."""
    out = {key: dump[key] for key in ours}
    for split in ("TrainDataset", "EvalDataset"):
        out[split] = {k: dump[split][k] for k in ("image_dir", "anno_path")}
    return out


@pytest.fixture(scope="module")
def paddle_dumps(paddle_configs):
    assert len(CONFIGS) == 4, f"expected the 4 SOLOv2 configs, found {NAMES}"
    return json.loads(run_paddle(REFERENCE, *CONFIGS))


@pytest.mark.parametrize("name", NAMES)
def test_exp_equals_merged_paddle_config(name, paddle_dumps):
    exp = get_exp(EXPS / f"{name}.py")
    ours = paddle_view(exp)
    mismatches = config_mismatches(ours, paddle_sections(paddle_dumps[name], ours))
    assert not mismatches, f"{name} differs from the merged YAML:\n" + "\n".join(mismatches)
    # Fields with a Paddle counterpart outside the sections.
    assert exp.eval_interval == paddle_dumps[name]["snapshot_epoch"]
    assert exp.use_ema == paddle_dumps[name].get("use_ema", False)  # ppdet's trainer default
    assert exp.sync_bn == (exp.backbone["norm_type"] == "sync_bn")
    assert tuple(exp.input_size) == tuple(exp.test_size)


def test_the_dump_is_paddles_deep_merge(paddle_dumps):
    """Guard the reference itself: values that only the merge and ``create`` can produce."""
    enhance = paddle_dumps["solov2_r50_enhance_coco"]["effective"]
    assert enhance["solov2_head"]["stacked_convs"] == 3                      # own file
    assert enhance["solov2_head"]["mask_nms"]["pre_nms_top_n"] == 500        # solov2_r50_fpn.yml
    assert enhance["solov2_head"]["mask_nms"]["sigma"] == 2.0                # MaskMatrixNMS default
    assert enhance["solov2_head"]["segm_strides"] == [8, 8, 16, 32, 32]      # SOLOv2Head default
    assert enhance["OptimizerBuilder"]["regularizer"]["factor"] == 1e-4      # optimizer_1x.yml
    # The global config is reset between configs: the enhance backbone must not leak.
    assert paddle_dumps["solov2_r50_fpn_3x_coco"]["effective"]["backbone"]["variant"] == "b"


@pytest.mark.parametrize("path", sorted(EXPS.glob("*.py")), ids=lambda p: p.stem)
def test_every_solov2_exp_builds_its_model(path):
    exp = get_exp(path)
    assert isinstance(exp, SOLOv2Exp) and exp.exp_name == path.stem and exp.train_with_masks
    with torch.device("meta"):
        model = exp.get_model()
    depth = exp.backbone["depth"]
    widths = [64, 128, 256, 512] if depth < 50 else [256, 512, 1024, 2048]
    assert list(model.backbone.out_channels) == widths
    assert len(model.backbone.res4) == {18: 2, 34: 6, 50: 6, 101: 23}[depth]
    backbone_dcn = any(hasattr(m, "conv_offset") for m in model.backbone.modules())
    assert backbone_dcn == (list(exp.backbone.get("dcn_v2_stages", [-1])) != [-1])
    assert list(model.neck.out_channels) == [exp.neck["out_channel"]] * 5
    head, mask_head = model.head, model.mask_head
    assert len(head.kernel_convs) == len(head.cate_convs) == exp.head["stacked_convs"]
    dcn = [i for i, conv in enumerate(head.kernel_convs) if hasattr(conv.conv, "conv_offset")]
    assert dcn == list(exp.head["dcn_v2_stages"])
    assert head.solo_cate.out_channels == exp.num_classes
    assert head.solo_kernel.out_channels == mask_head.out_channels == exp.mask_head["out_channels"]
    assert (head.drop_block is not None) == exp.head["drop_block"]
    assert all(hasattr(c.conv, "conv_offset") == exp.mask_head["use_dcn_in_tower"]
               for level in mask_head.convs_all_levels for c in level)
    assert head.mask_nms == exp.mask_nms and model.loss_config == exp.loss


def test_overrides_and_thresholds_reach_the_model():
    exp = get_exp(EXPS / "solov2_r50_fpn_3x_coco.py")
    exp.merge(["num_classes", "3", "head.stacked_convs", "2", "mask_nms.post_nms_top_n", "30"])
    assert exp.get_score_threshold() == 0.1
    exp.set_score_threshold(0.3)
    with torch.device("meta"):
        model = exp.get_model()
    assert model.head.score_threshold == 0.3 and model.head.mask_nms["post_nms_top_n"] == 30
    assert model.head.solo_cate.out_channels == 3 and len(model.head.kernel_convs) == 2
    with pytest.raises(UserError, match="^solov2_r50_fpn_3x_coco: Matrix NMS has no IoU"):
        exp.set_nms_threshold(0.5)


def test_schedule_is_paddles():
    exp = get_exp(EXPS / "solov2_r50_fpn_3x_coco.py")
    schedule = exp.get_lr_scheduler(iters_per_epoch=100, batch_size=16)  # Paddle's 2 x 8 GPUs
    assert schedule(0) == 0.0 and schedule(500) == pytest.approx(0.005)
    assert schedule(1000) == schedule(2399) == pytest.approx(0.01)
    assert schedule(2400) == pytest.approx(0.001) and schedule(3300) == pytest.approx(1e-4)
    assert exp.get_lr_scheduler(iters_per_epoch=100, batch_size=8)(2000) == pytest.approx(0.005)

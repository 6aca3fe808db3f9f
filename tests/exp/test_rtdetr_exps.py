"""Every RT-DETR exp equals PaddleDetection's config as ppdet merges it (``_BASE_`` included).

ppdet 2.6.0 (the reference venv, CI included) has no RT-DETR modules, but its ``load_config`` parses
and deep-merges the RT-DETR YAMLs (tests/reference/paddle_dump_rtdetr_config.py). The merged YAML
holds only the values the files give, so ``DEVELOP_DEFAULTS`` supplies the constructor defaults of
ppdet develop's classes (from their ``__init__`` signatures in ppdet/modeling: backbones/resnet.py,
backbones/hgnet_v2.py, transformers/hybrid_encoder.py, transformers/rtdetr_transformer.py,
transformers/matchers.py, losses/detr_loss.py, post_process.py); ``__shared__`` arguments take the
global value (``hidden_dim``, ``eval_size``, ``use_focal_loss``, ...) unless the section gives one,
as ppdet's ``create`` does. The exp, in the same shape, must equal that, key by key.
"""
import copy
import json

import cv2
import pytest
import torch

from mmdet_lite.exp import RTDETRExp, get_exp
from mmdet_lite.utils.errors import UserError

from config_compare import config_mismatches
from conftest import PADDLE_CONFIGS, REPO_ROOT, run_paddle

REFERENCE = REPO_ROOT / "tests/reference/paddle_dump_rtdetr_config.py"
CONFIGS = sorted((PADDLE_CONFIGS / "rtdetr").glob("rtdetr_*.yml"))
NAMES = [p.stem for p in CONFIGS]
EXPS = REPO_ROOT / "exps/rtdetr"

DEVELOP_DEFAULTS = {
    "ResNet": dict(depth=50, ch_in=64, variant="b", lr_mult_list=[1.0] * 4, groups=1, base_width=64,
                   norm_type="bn", norm_decay=0, freeze_norm=True, freeze_at=0,
                   return_idx=[0, 1, 2, 3], dcn_v2_stages=[-1], num_stages=4, std_senet=False,
                   freeze_stem_only=False),
    "PPHGNetV2": dict(use_lab=False, lr_mult_list=[1.0] * 5, return_idx=[1, 2, 3],
                      freeze_stem_only=True, freeze_at=0, freeze_norm=True),
    "HybridEncoder": dict(in_channels=[512, 1024, 2048], feat_strides=[8, 16, 32], hidden_dim=256,
                          use_encoder_idx=[2], num_encoder_layers=1,
                          encoder_layer="TransformerLayer",
                          pe_temperature=10000, expansion=1.0, depth_mult=1.0, act="silu",
                          trt=False, eval_size=None),
    "TransformerLayer": dict(dim_feedforward=1024, dropout=0.0, activation="relu",
                             attn_dropout=None, act_dropout=None, normalize_before=False),
    "RTDETRTransformer": dict(num_classes=80, hidden_dim=256, num_queries=300,
                              position_embed_type="sine", backbone_feat_channels=[512, 1024, 2048],
                              feat_strides=[8, 16, 32], num_levels=3, num_decoder_points=4, nhead=8,
                              num_decoder_layers=6, dim_feedforward=1024, dropout=0.0,
                              activation="relu", num_denoising=100, label_noise_ratio=0.5,
                              box_noise_scale=1.0, learnt_init_query=True,
                              query_pos_head_inv_sig=False, eval_size=None, eval_idx=-1, eps=1e-2),
    "DINOHead": dict(loss="DINOLoss", eval_idx=-1),
    "DINOLoss": dict(num_classes=80, matcher="HungarianMatcher",
                     loss_coeff={"class": 1, "bbox": 5, "giou": 2, "no_object": 0.1, "mask": 1,
                                 "dice": 1},
                     aux_loss=True, use_focal_loss=False, use_vfl=False, vfl_iou_type="bbox",
                     use_uni_match=False, uni_match_ind=0),
    "HungarianMatcher": dict(matcher_coeff={"class": 1, "bbox": 5, "giou": 2, "mask": 1, "dice": 1},
                             use_focal_loss=False, with_mask=False, num_sample_points=12544,
                             alpha=0.25, gamma=2.0),
    "DETRPostProcess": dict(num_classes=80, num_top_queries=100, dual_queries=False, dual_groups=0,
                            use_focal_loss=False, with_mask=False, mask_stride=4,
                            mask_threshold=0.5, use_avg_mask_score=False,
                            bbox_decode_type="origin"),
}
SHARED = {"ResNet": ["norm_type"], "HybridEncoder": ["depth_mult", "act", "trt", "eval_size"],
          "RTDETRTransformer": ["num_classes", "hidden_dim", "eval_size"],
          "DINOLoss": ["num_classes", "use_focal_loss"],
          "HungarianMatcher": ["use_focal_loss", "with_mask", "num_sample_points"],
          "DETRPostProcess": ["num_classes", "use_focal_loss", "with_mask"]}
INJECT = {"HybridEncoder": "encoder_layer", "DINOHead": "loss", "DINOLoss": "matcher"}

# Paddle arguments the family fixes (or derives from other modules) instead of exposing as fields.
FIXED = {
    "ResNet": dict(ch_in=64, groups=1, base_width=64, dcn_v2_stages=[-1], std_senet=False),
    "HybridEncoder": dict(trt=False),
    "DINOLoss": dict(use_focal_loss=True, vfl_iou_type="bbox", use_uni_match=False,
                     uni_match_ind=0),
    "HungarianMatcher": dict(use_focal_loss=True, with_mask=False, num_sample_points=12544,
                             alpha=0.25, gamma=2.0),
    "DETRPostProcess": dict(dual_queries=False, dual_groups=0, use_focal_loss=True,
                            with_mask=False, mask_stride=4, mask_threshold=0.5,
                            use_avg_mask_score=False, bbox_decode_type="origin"),
}
DERIVED = {"HybridEncoder": ["in_channels"], "RTDETRTransformer": ["backbone_feat_channels"]}


def effective(name, given, config):
    """ppdet's ``create``: defaults, then shared globals, then the section;
    injected dicts expanded."""
    kwargs = copy.deepcopy(DEVELOP_DEFAULTS[name])
    kwargs.update({k: config[k] for k in SHARED.get(name, []) if k in config})
    kwargs.update(copy.deepcopy(given))
    key = INJECT.get(name)
    if key and isinstance(kwargs.get(key), dict):
        sub = dict(kwargs[key])
        kwargs[key] = {"name": sub["name"], **effective(sub.pop("name"), sub, config)}
    for derived in DERIVED.get(name, []):
        kwargs.pop(derived)
    return kwargs


def normalize(dump):
    """The merged Paddle config in the shape of ``exp_view``."""
    arch = dump["DETR"]
    backbone = arch["backbone"]
    sections = {
        "backbone": {"name": backbone, **effective(backbone, dump[backbone], dump)},
        "encoder": effective("HybridEncoder", dump["HybridEncoder"], dump),
        "decoder": effective("RTDETRTransformer", dump["RTDETRTransformer"], dump),
        "head": effective("DINOHead", dump["DINOHead"], dump),
        "post_process": effective("DETRPostProcess", dump["DETRPostProcess"], dump),
    }
    keys = ["epoch", "snapshot_epoch", "log_iter", "use_ema", "ema_decay", "ema_decay_type",
            "ema_filter_no_grad", "eval_size", "num_classes", "norm_type", "find_unused_parameters",
            "worker_num", "LearningRate", "OptimizerBuilder", "TrainReader", "EvalReader",
            "TestReader"]
    sections.update({k: dump[k] for k in keys})
    sections["architecture"] = {k: v for k, v in arch.items() if k != "backbone"}
    sections["datasets"] = {k: {f: dump[k][f] for f in ("image_dir", "anno_path")}
                            for k in ("TrainDataset", "EvalDataset")}
    return json.loads(json.dumps(sections))


def exp_view(exp):
    """The exp in the shape of ``normalize``: its fields plus what the family fixes."""
    backbone = dict(exp.backbone)
    name = backbone.pop("name")  # our backbone names are Paddle's
    backbone = {"name": name, **backbone, **FIXED.get(name, {})}
    encoder = {**exp.encoder, **FIXED["HybridEncoder"], "eval_size": list(exp.test_size)}
    decoder = {**exp.decoder, "num_classes": exp.num_classes, "eval_size": list(exp.test_size)}
    loss = copy.deepcopy(exp.loss)
    assert loss.pop("name") == "DETRLoss"  # ours: one class, ppdet's DINOLoss as DINOHead calls it
    matcher = loss.pop("matcher")
    matcher = {"name": matcher["name"], "matcher_coeff": matcher["matcher_coeff"],
               **FIXED["HungarianMatcher"]}
    loss = {"name": "DINOLoss", "num_classes": exp.num_classes, "matcher": matcher, **loss,
            **FIXED["DINOLoss"]}
    decay = dict(exp.lr_decay)
    assert decay.pop("name") == "PiecewiseDecay" and not isinstance(decay["gamma"], list)
    decay = {"name": "PiecewiseDecay", **decay, "values": None,
             "gamma": [decay["gamma"] / 10 ** i for i in range(len(decay["milestones"]))]}
    assert exp.no_weight_decay == []  # Paddle's OptimizerBuilder has no param_groups
    normalize_image = {"mean": list(exp.pixel_mean), "std": list(exp.pixel_std),
                       "norm_type": "none"}
    resize = {"target_size": list(exp.test_size), "keep_ratio": False, "interp": 2}
    eval_transforms = [{"Decode": {}}, {"Resize": resize},
                       {"NormalizeImage": normalize_image}, {"Permute": {}}]
    view = {
        "backbone": backbone, "encoder": encoder, "decoder": decoder,
        "head": {"loss": loss, "eval_idx": -1},
        "post_process": {"num_classes": exp.num_classes, "num_top_queries": exp.num_top_queries,
                         **FIXED["DETRPostProcess"]},
        "epoch": exp.max_epoch, "snapshot_epoch": exp.snapshot_epoch,
        "log_iter": exp.print_interval,
        "use_ema": exp.use_ema, "ema_decay": exp.ema_decay, "ema_decay_type": exp.ema_decay_type,
        "ema_filter_no_grad": exp.ema_filter_no_grad,
        "eval_size": list(exp.test_size), "num_classes": exp.num_classes,
        "norm_type": "sync_bn" if exp.sync_bn else "bn",
        "find_unused_parameters": exp.find_unused_parameters, "worker_num": exp.data_num_workers,
        "LearningRate": {"base_lr": exp.base_lr, "schedulers": [decay, exp.warmup]},
        "OptimizerBuilder": {"clip_grad_by_norm": exp.clip_grad_norm, "regularizer": False,
                             "optimizer": {"type": "AdamW", "weight_decay": exp.weight_decay}},
        "TrainReader": {
            "sample_transforms": [{"Decode": {}}]
            + [{k: v} for k, v in exp.train_transforms.items()],
            "batch_transforms": [
                {"BatchRandomResize": {"target_size": exp.train_sizes, "random_size": True,
                                       "random_interp": True, "keep_ratio": False}},
                {"NormalizeImage": normalize_image}, {"NormalizeBox": {}}, {"BboxXYXY2XYWH": {}},
                {"Permute": {}}],
            "batch_size": exp.train_batch_size, "shuffle": True, "drop_last": True,
            "collate_batch": False, "use_shared_memory": True},
        "EvalReader": {"sample_transforms": eval_transforms, "batch_size": exp.eval_batch_size,
                       "shuffle": False, "drop_last": False},
        "TestReader": {"inputs_def": {"image_shape": [3, *exp.test_size]},
                       "sample_transforms": eval_transforms, "batch_size": 1, "shuffle": False,
                       "drop_last": False},
        "architecture": {"neck": "HybridEncoder", "transformer": "RTDETRTransformer",
                         "detr_head": "DINOHead", "post_process": "DETRPostProcess"},
        "datasets": {"TrainDataset": {"image_dir": exp.train_image_folder,
                                      "anno_path": exp.train_ann},
                     "EvalDataset": {"image_dir": exp.val_image_folder, "anno_path": exp.val_ann}},
    }
    return json.loads(json.dumps(view))


@pytest.fixture(scope="module")
def paddle_dumps(paddle_configs):
    assert len(CONFIGS) == 7, f"expected the 7 RT-DETR configs, found {NAMES}"
    return json.loads(run_paddle(REFERENCE, *CONFIGS))


@pytest.mark.parametrize("name", NAMES)
def test_exp_equals_merged_paddle_config(name, paddle_dumps):
    exp = get_exp(EXPS / f"{name}.py")
    mismatches = config_mismatches(exp_view(exp), normalize(paddle_dumps[name]))
    assert not mismatches, f"{name} differs from the merged YAML:\n" + "\n".join(mismatches)


@pytest.mark.parametrize("path", sorted(EXPS.glob("*.py")), ids=lambda p: p.stem)
def test_every_rtdetr_exp_builds_its_model(path):
    exp = get_exp(path)
    assert isinstance(exp, RTDETRExp) and exp.exp_name == path.stem
    with torch.device("meta"):
        model = exp.get_model()
    assert len(model.decoder.layers) == exp.decoder["num_decoder_layers"]
    assert model.encoder.hidden_dim == exp.encoder["hidden_dim"]
    assert model.decoder.hidden_dim == exp.decoder["hidden_dim"]
    assert model.criterion.matcher.matcher_coeff == dict(class_=2.0, bbox=5.0, giou=2.0)
    assert model.criterion.loss_coeff == dict(class_=1.0, bbox=5.0, giou=2.0)


def test_overrides_reach_the_model_and_transforms():
    exp = get_exp(EXPS / "rtdetr_r18vd_6x_coco.py")
    exp.merge(["decoder.num_decoder_layers", "2", "num_classes", "3",
               "train_transforms.RandomCrop.prob", "0.5", "loss.matcher.matcher_coeff",
               "{'class': 4}", "test_size", "320,320"])
    with torch.device("meta"):
        model = exp.get_model()
    assert len(model.decoder.layers) == 2 and model.decoder.num_classes == 3
    assert model.criterion.matcher.matcher_coeff["class_"] == 4.0
    assert exp.train_transforms["RandomCrop"] == {"prob": 0.5}
    transform = exp.get_test_transform()  # EvalReader: Resize(keep_ratio=False, interp=2)
    assert transform.target_size == (320, 320) and transform.interp == cv2.INTER_CUBIC
    assert exp.loss["matcher"]["name"] == "HungarianMatcher"  # the exp keeps its config dicts


def test_voc_exp_fine_tunes_the_r18_coco_model():
    voc = get_exp(EXPS / "rtdetr_r18vd_6x_voc2012.py")
    coco = get_exp(EXPS / "rtdetr_r18vd_6x_coco.py")
    for field in ("backbone", "encoder", "decoder", "loss", "num_top_queries", "pixel_mean",
                  "pixel_std", "train_transforms", "train_sizes", "test_size", "weight_decay",
                  "clip_grad_norm", "ema_decay", "ema_decay_type"):
        assert getattr(voc, field) == getattr(coco, field), field
    assert voc.num_classes == 20 and voc.data_dir == "datasets/VOCdevkit"
    assert (voc.train_ann, voc.val_ann) == ("annotations/voc2012_train.json",
                                            "annotations/voc2012_val.json")
    assert voc.train_image_folder == voc.val_image_folder == "VOC2012/JPEGImages"
    assert (voc.max_epoch, voc.eval_interval, voc.snapshot_epoch) == (16, 2, 2)
    assert voc.warmup == dict(name="LinearWarmup", steps=2000, start_factor=0.001, epochs=1)
    # miemiedetection's per-image LR: 1e-4 for 4 GPUs x 4 images, as the COCO recipe.
    assert voc.base_lr / (voc.train_batch_size * voc.ref_num_devices) == pytest.approx(1e-4 / 16)
    schedule = voc.get_lr_scheduler(iters_per_epoch=100, batch_size=8)
    assert schedule(0) == pytest.approx(5e-5 * 0.001)
    assert schedule(100) == schedule(5000) == pytest.approx(5e-5)


def test_rtdetr_post_processing_has_no_thresholds_to_set():
    exp = get_exp(EXPS / "rtdetr_r18vd_6x_coco.py")
    assert exp.get_score_threshold() is None  # top-k queries, no NMS
    with pytest.raises(UserError, match="^rtdetr_r18vd_6x_coco has no score threshold to set"):
        exp.set_score_threshold(0.3)
    with pytest.raises(UserError, match="^rtdetr_r18vd_6x_coco has no NMS IoU threshold to set"):
        exp.set_nms_threshold(0.5)

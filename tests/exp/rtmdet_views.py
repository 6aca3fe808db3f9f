"""RTMDet exps in the shape of mmdet's / SSCMA's configs, for the fidelity tests.

Each view is built from the exp's fields plus the values the family fixes (it has no field for
them); sizes turn from the exp's ``(h, w)`` into mmdet's ``(w, h)`` lists.
"""
import json

ACT_CFG = {"silu": {"type": "SiLU", "inplace": True}, "relu": {"type": "ReLU", "inplace": True},
           "relu6": {"type": "ReLU6", "inplace": True}}
CSPNEXT_WIDTHS = (256, 512, 1024)  # P5 stage outputs at widen_factor 1 (out_indices 2, 3, 4)

# mmdet class arguments the family fixes (their mmdet defaults), per section / transform.
BACKBONE_FIXED = dict(out_indices=[2, 3, 4], frozen_stages=-1, use_depthwise=False,
                      arch_ovewrite=None, conv_cfg=None, norm_eval=False)
NECK_FIXED = dict(use_depthwise=False, upsample_cfg={"scale_factor": 2, "mode": "nearest"},
                  conv_cfg=None)
HEAD_FIXED = dict(use_depthwise=False, with_objectness=False, reg_decoded_bbox=True,
                  conv_cfg=None, bbox_coder={"type": "DistancePointBBoxCoder"})
TRANSFORM_FIXED = {
    "CachedMosaic": dict(center_ratio_range=[0.5, 1.5], bbox_clip_border=True),
    "RandomResize": dict(resize_type="Resize"),
    "RandomCrop": dict(crop_type="absolute", allow_negative_crop=False, recompute_bbox=False,
                       bbox_clip_border=True),
    "YOLOXHSVRandomAug": {},
    "RandomFlip": dict(direction="horizontal", swap_seg_labels=None),
    "Pad": dict(size_divisor=None, pad_to_square=False, padding_mode="constant"),
    "CachedMixUp": dict(flip_ratio=0.5, max_iters=15, bbox_clip_border=True),
}
# Arguments that do not change what is computed (weight init: a converted or trained model
# replaces it; the ImageNet checkpoint of s / tiny is named in their exp docstrings).
IGNORED = ("init_cfg", "loss_centerness", "train_cfg", "test_cfg")


def as_json(value):
    return json.loads(json.dumps(value))


def wh(size):
    """``(h, w)`` -> mmdet's ``[w, h]``."""
    return [int(size[1]), int(size[0])]


def without(cfg, keys=IGNORED):
    return {k: v for k, v in cfg.items() if k not in keys}


def pipeline_view(exp, stage2=False):
    """The exp's train transforms as mmdet's pipeline steps (sizes as ``[w, h]``)."""
    steps = []
    for name, kwargs in exp.train_pipeline(stage2).items():
        kwargs = {k: wh(v) if k in ("img_scale", "scale", "crop_size", "size") else v
                  for k, v in kwargs.items()}
        steps.append({"type": name, **TRANSFORM_FIXED.get(name, {}), **kwargs})
    return as_json(steps)


def model_view(exp):
    """The exp as mmdet's ``model`` (RTMDet): backbone, neck, head, assigner, test_cfg."""
    backbone, neck, head = exp.backbone, exp.neck, exp.head
    assert backbone["split_max_pool"] is False, "mmdet's CSPNeXt has no split pools"
    norm = {"type": "SyncBN"}  # no eps/momentum: PyTorch's 1e-5 / 0.1, the models' defaults
    view = {
        "type": "RTMDet",
        "data_preprocessor": {"type": "DetDataPreprocessor", "mean": list(exp.pixel_mean),
                              "std": list(exp.pixel_std),
                              "bgr_to_rgb": exp.channel_order == "rgb", "batch_augments": None},
        "backbone": {"type": backbone["name"], **BACKBONE_FIXED, "arch": backbone["arch"],
                     "deepen_factor": backbone["deepen_factor"],
                     "widen_factor": backbone["widen_factor"],
                     "expand_ratio": backbone["expand_ratio"],
                     "channel_attention": backbone["channel_attention"],
                     "spp_kernel_sizes": list(backbone["spp_kernel_sizes"]),
                     "norm_cfg": norm, "act_cfg": ACT_CFG[backbone["act"]]},
        "neck": {"type": neck["name"], **NECK_FIXED,
                 "in_channels": [int(c * backbone["widen_factor"]) for c in CSPNEXT_WIDTHS],
                 "out_channels": neck["out_channels"], "num_csp_blocks": neck["num_csp_blocks"],
                 "expand_ratio": neck["expand_ratio"], "norm_cfg": norm,
                 "act_cfg": ACT_CFG[neck["act"]]},
        "bbox_head": {
            "type": "RTMDetSepBNHead", **HEAD_FIXED, "num_classes": exp.num_classes,
            "in_channels": neck["out_channels"], "feat_channels": head["feat_channels"],
            "stacked_convs": head["stacked_convs"], "share_conv": head["share_conv"],
            "pred_kernel_size": head["pred_kernel_size"], "exp_on_reg": head["exp_on_reg"],
            "anchor_generator": {"type": "MlvlPointGenerator", "offset": 0,
                                 "strides": list(head["strides"])},
            "norm_cfg": norm, "act_cfg": ACT_CFG[head["act"]],
            "loss_cls": {"type": "QualityFocalLoss", "use_sigmoid": True, "activated": False,
                         "reduction": "mean", **exp.loss["loss_cls"]},
            "loss_bbox": {"type": "GIoULoss", "eps": 1e-6, "reduction": "mean",
                          **exp.loss["loss_bbox"]}},
        "assigner": {"type": "DynamicSoftLabelAssigner", **exp.loss["assigner"],
                     "iou_calculator": {"type": "BboxOverlaps2D"}},
        "test_cfg": {"nms_pre": exp.test_cfg["nms_pre"],
                     "min_bbox_size": exp.test_cfg["min_bbox_size"],
                     "score_thr": exp.test_cfg["score_thr"],
                     "nms": {"type": "nms", "iou_threshold": exp.test_cfg["iou_threshold"]},
                     "max_per_img": exp.test_cfg["max_per_img"]},
    }
    return as_json(view)


def eval_pipeline_view(exp):
    """mmdet's test ``Resize`` + ``Pad`` of the exp (``get_test_transform`` + ``pad_val``)."""
    size = wh(exp.test_size)
    return as_json([
        {"type": "Resize", "scale": size, "scale_factor": None, "keep_ratio": True,
         "clip_object_border": True, "backend": "cv2", "interpolation": "bilinear"},
        {"type": "Pad", "size": size, **TRANSFORM_FIXED["Pad"],
         "pad_val": {"img": [exp.pad_val] * 3}},
    ])


def schedule_view(exp):
    """The exp's optimizer, LR schedule and EMA as mmdet's ``optim_wrapper`` /
    ``param_scheduler`` / ``EMAHook`` / ``ExpMomentumEMA``."""
    decay = exp.lr_decay_config()
    half = decay["max_epochs"] // 2
    return as_json({
        "optimizer": {"type": "AdamW", "lr": exp.base_lr, "weight_decay": exp.weight_decay},
        "param_scheduler": [
            {"type": exp.warmup["name"], "start_factor": exp.warmup["start_factor"],
             "by_epoch": False, "begin": 0, "end": exp.warmup["end"]},
            {"type": "CosineAnnealingLR", "eta_min": exp.base_lr * decay["min_lr_ratio"],
             "begin": half, "end": decay["max_epochs"], "T_max": decay["max_epochs"] - half,
             "by_epoch": True, "convert_to_iter_based": True}],
        "ema_hook": {"type": "EMAHook", "ema_type": "ExpMomentumEMA",
                     "momentum": exp.ema_momentum, "update_buffers": True, "priority": 49},
        "ema_gamma": exp.ema_gamma,
    })

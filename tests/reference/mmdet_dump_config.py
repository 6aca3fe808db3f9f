"""Reference: mmdet 3.3.0's RTMDet configs as mmengine merges them, with the classes' defaults.

Usage: ``python mmdet_dump_config.py CONFIG.py ...`` prints JSON ``{config stem: dump}``. Each dump
holds the config sections the exps mirror; every ``type=`` dict of the model and the pipelines
is completed with its class's own defaults (``inspect.signature``), so a value the config leaves
out is compared too. Runs under ``tests/conftest.py::run_mmdet`` (never imports mmdet_lite).
"""
import inspect
import json
import sys
from pathlib import Path

import mmdet_stubs  # noqa: F401  (imported before mmdet, which the functions import)


def defaults(cls):
    """``{argument: default}`` of ``cls.__init__`` and of its bases' (which a ``**kwargs``
    passes on to), the class's own winning."""
    out = {}
    for klass in reversed(cls.__mro__):
        if "__init__" in vars(klass) and klass is not object:
            out.update({name: p.default
                        for name, p in inspect.signature(klass.__init__).parameters.items()
                        if p.default is not inspect.Parameter.empty})
    return out


def effective(cfg, registry):
    """A ``type=`` config dict completed with its class's defaults (``type`` kept); ``registry``
    names one of ``mmdet.registry``'s."""
    import mmdet.registry

    registry = getattr(mmdet.registry, registry)
    cfg = dict(cfg)
    cls = registry.get(cfg["type"])
    if cls is None:
        raise KeyError(f"{cfg['type']} is not registered")
    return {**defaults(cls), **cfg}


def pipeline(steps):
    return [effective(step, "TRANSFORMS") for step in steps]


def dump(path):
    from mmengine.config import Config

    cfg = Config.fromfile(path).to_dict()
    model = cfg["model"]
    head = model["bbox_head"]
    hooks = {hook["type"]: hook for hook in cfg["custom_hooks"]}
    switch = dict(hooks["PipelineSwitchHook"])
    switch["switch_pipeline"] = pipeline(switch["switch_pipeline"])
    ema = hooks["EMAHook"]
    return {
        "model": {
            "type": model["type"],
            "data_preprocessor": model["data_preprocessor"],
            "backbone": effective(model["backbone"], "MODELS"),
            "neck": effective(model["neck"], "MODELS"),
            "bbox_head": {**effective(head, "MODELS"),
                          "loss_cls": effective(head["loss_cls"], "MODELS"),
                          "loss_bbox": effective(head["loss_bbox"], "MODELS")},
            "assigner": effective(model["train_cfg"]["assigner"], "TASK_UTILS"),
            "train_cfg": model["train_cfg"],
            "test_cfg": model["test_cfg"],
        },
        "train_pipeline": pipeline(cfg["train_dataloader"]["dataset"]["pipeline"]),
        "test_pipeline": pipeline(cfg["test_dataloader"]["dataset"]["pipeline"]),
        "train_dataloader": {k: cfg["train_dataloader"][k] for k in ("batch_size", "num_workers")},
        "val_dataloader": {k: cfg["val_dataloader"][k] for k in ("batch_size", "num_workers")},
        "dataset": {k: cfg["train_dataloader"]["dataset"][k]
                    for k in ("ann_file", "data_prefix", "filter_cfg")},
        "val_dataset": {k: cfg["val_dataloader"]["dataset"][k]
                        for k in ("ann_file", "data_prefix")},
        "optim_wrapper": cfg["optim_wrapper"],
        "param_scheduler": cfg["param_scheduler"],
        "ema_hook": ema,
        "ema": effective({"type": ema["ema_type"]}, "MODELS"),
        "pipeline_switch_hook": switch,
        "train_cfg": cfg["train_cfg"],
        "checkpoint_hook": cfg["default_hooks"]["checkpoint"],
        "logger_hook": cfg["default_hooks"]["logger"],
        "auto_scale_lr": cfg.get("auto_scale_lr"),
    }


def main(paths):
    from mmdet.utils import register_all_modules

    register_all_modules()
    out = {Path(path).stem: dump(path) for path in paths}
    print(json.dumps(out, default=repr))


if __name__ == "__main__":
    main(sys.argv[1:])

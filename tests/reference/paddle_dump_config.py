"""Paddle-side reference for the exp fidelity tests: ppdet's merged configs as JSON.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_dump_config.py CONFIG.yml [CONFIG.yml ...]

loads every CONFIG with ppdet's ``load_config`` (Paddle's own ``_BASE_`` deep merge, on a fresh
global config each time) and prints one JSON object ``{config stem: dump}`` on stdout. Each dump
holds the top-level keys, every section as plain data, and ``effective``: the keyword arguments
ppdet would pass to the model's modules (registered defaults overlaid with the YAML; injected
sub-modules such as ``conv_feat`` or ``nms`` expanded the same way, with their ``name``).
Scheduler tag objects (``!CosineDecay``) and dict-form schedulers both become the full attribute
dicts of the scheduler ppdet builds, with their ``name``.
"""
import contextlib
import io
import json
import os
import sys

with contextlib.redirect_stdout(io.StringIO()):  # ppdet prints warnings on import
    import ppdet  # noqa: F401  (registers every module in the global config)
    from ppdet.core import workspace
    from ppdet.core.config.schema import SchemaDict, SharedConfig
    from ppdet.optimizer import optimizer as ppdet_optimizer

_PRISTINE_KEYS = set(workspace.global_config)


def reset_global_config():
    """Drop everything a previous ``load_config`` merged (registered schemas start empty)."""
    config = workspace.global_config
    for key in list(config):
        if key not in _PRISTINE_KEYS:
            del config[key]
        elif isinstance(config[key], SchemaDict):
            dict.clear(config[key])


def plain(value, config):
    """JSON-able copy: shared values resolved, objects as dicts of their attributes."""
    if isinstance(value, SharedConfig):
        return plain(config.get(value.key, value.default_value), config)
    if isinstance(value, dict):
        return {str(k): plain(v, config) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, config) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "__dict__"):
        return {"name": type(value).__name__, **plain(vars(value), config)}
    return repr(value)


def effective(name, given, config):
    """Constructor kwargs of registered module ``name``: schema defaults overlaid with ``given``."""
    schema = config[name]
    kwargs = {k: s.default for k, s in schema.schema.items() if s.has_default()}
    kwargs.update(given)
    out = {}
    for key, value in kwargs.items():
        if key in schema.inject and isinstance(value, dict) and "name" in value:
            sub = {k: v for k, v in value.items() if k != "name"}
            out[key] = {"name": value["name"], **effective(value["name"], sub, config)}
        else:
            out[key] = plain(value, config)
    return out


def scheduler(item):
    if isinstance(item, dict):
        kwargs = dict(item)
        item = getattr(ppdet_optimizer, kwargs.pop("name"))(**kwargs)
    return {"name": type(item).__name__, **vars(item)}


def load(path):
    """ppdet's merged config of ``path``, on a fresh global config."""
    reset_global_config()
    return workspace.load_config(path)


def sections(config):
    """Every top-level value and every non-empty section of ``config`` as plain data."""
    out = {k: plain(v, config) for k, v in config.items() if not isinstance(v, SchemaDict)}
    for key, value in config.items():
        if isinstance(value, SchemaDict) and len(value):
            out[key] = plain(dict(value), config)
    return out


def schedule(config):
    """The effective ``OptimizerBuilder``, ``LearningRate`` (schedulers expanded) and ``ema``."""
    lr = config["LearningRate"]
    return {
        "OptimizerBuilder": effective("OptimizerBuilder", dict(config["OptimizerBuilder"]), config),
        "ema": {"ema_decay": config.get("ema_decay", 0.9998),  # ppdet/engine/trainer.py defaults
                "ema_decay_type": config.get("ema_decay_type", "threshold"),
                "cycle_epoch": config.get("cycle_epoch", -1)},
        "LearningRate": {"base_lr": lr["base_lr"],
                         "schedulers": [scheduler(s) for s in lr["schedulers"]]},
    }


def dump(path):
    config = load(path)
    parts = dict(config[config["architecture"]])
    out = sections(config)
    out["effective"] = {
        "architecture": parts,
        **{role: effective(parts[role], dict(config[parts[role]]), config)
           for role in ("backbone", "neck", "head")},
        **schedule(config),
    }
    return out


def main(paths, dump_one=dump):
    """Print ``{config stem: dump_one(path)}`` as one JSON object."""
    result = {os.path.splitext(os.path.basename(p))[0]: dump_one(p) for p in paths}
    sys.stdout.write(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])

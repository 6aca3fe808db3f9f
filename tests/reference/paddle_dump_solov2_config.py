"""Paddle-side reference for the SOLOv2 exp fidelity test: ppdet's merged SOLOv2 configs as JSON.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_dump_solov2_config.py CONFIG.yml [CONFIG.yml ...]

loads every CONFIG with ppdet 2.6.0's ``load_config`` (its ``_BASE_`` deep merge, on a fresh
global config each time) and prints one JSON object ``{config stem: dump}``: every top-level value
and non-empty section as plain data, and ``effective``: the keyword arguments ppdet's ``create``
passes to ``SOLOv2``'s modules (``backbone``, ``neck``, ``solov2_head``, ``mask_head``: registered
defaults, shared values, then the YAML; the head's injected ``solov2_loss`` and ``mask_nms``,
given by name in the YAML, expanded the same way with their ``name``), and the schedule
(``paddle_dump_config.schedule``: ``OptimizerBuilder``, ``LearningRate``, ``ema``).
"""
import sys

from paddle_dump_config import effective, load, main, schedule, sections

PARTS = ("backbone", "neck", "solov2_head", "mask_head")


def expand_injected(name, kwargs, config):
    """``effective`` kwargs with injected modules named by a string (``mask_nms:
    MaskMatrixNMS``) expanded into ``{"name": ..., **their effective kwargs}``."""
    out = dict(kwargs)
    for key in config[name].inject:
        value = out.get(key)
        if isinstance(value, str) and value in config:
            out[key] = {"name": value, **effective(value, dict(config[value]), config)}
    return out


def dump(path):
    config = load(path)
    parts = dict(config[config["architecture"]])
    out = sections(config)
    out["effective"] = {role: expand_injected(parts[role], effective(
        parts[role], dict(config[parts[role]]), config), config) for role in PARTS}
    out["effective"].update(architecture=parts, **schedule(config))
    return out


if __name__ == "__main__":
    main(sys.argv[1:], dump)

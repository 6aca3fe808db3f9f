"""Paddle-side reference for the RT-DETR exp fidelity test: ppdet's merged RT-DETR configs as JSON.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_dump_rtdetr_config.py CONFIG.yml [CONFIG.yml ...]

ppdet 2.6.0 has no RT-DETR modules (HybridEncoder, RTDETRTransformer, PPHGNetV2), but its
``load_config`` only parses the YAML (the ``!PiecewiseDecay`` / ``!LinearWarmup`` tags are
registered) and deep-merges the ``_BASE_`` files, on a fresh global config each time. Prints one
JSON
object ``{config stem: dump}``: every top-level value and every non-empty section as plain data
(only what the YAML files give: module defaults are not added; the LR schedulers as the full
attribute dicts of the objects ppdet builds, with their ``name``).
"""
import json
import os
import sys

from paddle_dump_config import plain, reset_global_config, workspace


def dump(path):
    reset_global_config()
    config = workspace.load_config(path)
    return {str(k): plain(dict(v) if isinstance(v, dict) else v, config)
            for k, v in config.items() if not (isinstance(v, dict) and not v)}


def main(paths):
    result = {os.path.splitext(os.path.basename(p))[0]: dump(p) for p in paths}
    sys.stdout.write(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])

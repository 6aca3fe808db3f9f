"""Paddle-side reference for the SOLOv2 rule-table test: the names and shapes of a SOLOv2 model.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_solov2_keys.py CONFIG.yml OUT.json

Builds ppdet 2.6.0's ``SOLOv2`` from CONFIG (one of ``paddledet_configs/solov2/*.yml``) and writes
``{parameter or buffer name: shape}`` of its state dict, aliases included, as JSON.
"""
import contextlib
import io
import json
import sys

with contextlib.redirect_stdout(io.StringIO()):  # ppdet prints warnings on import
    from ppdet.core.workspace import create, load_config


def main(config, out_path):
    model = create(load_config(config).architecture)
    with open(out_path, "w") as f:
        json.dump({k: list(v.shape) for k, v in model.state_dict().items()}, f)


if __name__ == "__main__":
    main(*sys.argv[1:])

"""Paddle-side reference for the weight-decay test: which PicoDet parameters Paddle's L2 factor
skips.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_decay_params.py CONFIG.yml

builds the config's architecture (one PicoDet per process: ppdet's LCPAN mutates a default
argument) and prints ``{"decay": [...], "no_decay": [...]}``: the names of the trainable
parameters without their own regularizer (they get the optimizer's ``L2Decay`` factor) and of
those with their own ``L2Decay(0.0)``.
"""
import contextlib
import io
import json
import sys

with contextlib.redirect_stdout(io.StringIO()):  # ppdet prints warnings on import
    from ppdet.core.workspace import create, load_config


def main():
    with contextlib.redirect_stdout(io.StringIO()):
        model = create(load_config(sys.argv[1]).architecture)
    out = {"decay": [], "no_decay": []}
    for name, param in model.named_parameters():
        if not param.trainable:
            continue
        regularizer = param.regularizer
        if regularizer is None:
            out["decay"].append(name)
        elif type(regularizer).__name__ == "L2Decay" and regularizer._coeff == 0.0:
            out["no_decay"].append(name)
        else:
            raise SystemExit(f"{name}: unexpected regularizer {regularizer}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

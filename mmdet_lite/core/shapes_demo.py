"""``make demo``: train PicoDet-XS from scratch on the generated shapes set, evaluate, draw.

Each step runs the real command-line tool in a subprocess (its output goes to the console), so
the demo is exactly what a user would type:

    python tools/make_shapes_dataset.py --out datasets/shapes          (only if it is missing)
    python tools/train.py -f exps/picodet/picodet_xs_256_shapes.py --device cpu
    python tools/eval.py  -f ... -c outputs/picodet_xs_256_shapes/best_ckpt.pth --device cpu
    python tools/demo.py image -f ... -c ... --path <copies of assets/shapes_*.jpg> --save_result

``write_demo_assets`` (re)writes ``assets/shapes_*.jpg`` with the generator: three images of a
split the training set never sees (seed 101, at most 360x480 so that each JPEG stays < 60 KB).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmdet_lite.utils.errors import UserError

__all__ = ["DEMO_EXP", "run_shapes_demo", "write_demo_assets"]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_EXP = REPO_ROOT / "exps/picodet/picodet_xs_256_shapes.py"
ASSET_SEED = 101
ASSET_PATTERN = "shapes_*.jpg"
_AP_LINE = re.compile(r"Average Precision\s+\(AP\) @\[ IoU=(0\.50:0\.95|0\.50)\s+\| area=\s+all \| "
                      r"maxDets=100 \] = (-?[0-9.]+)")
_SAVED = re.compile(r"results saved to (.+)")


def write_demo_assets(assets_dir=REPO_ROOT / "assets", num_images=3):
    """Write ``assets_dir/shapes_<k>.jpg`` (k = 1..num_images) from the shapes generator."""
    from mmdet_lite.data.synthetic import make_shapes_dataset

    with tempfile.TemporaryDirectory() as tmp:
        data = make_shapes_dataset(tmp, num_train=0, num_val=num_images, seed=ASSET_SEED,
                                   min_size=(240, 320), max_size=(360, 480))
        paths = []
        for k, image in enumerate(data["val"]["images"], start=1):
            path = Path(assets_dir) / f"shapes_{k}.jpg"
            shutil.copyfile(Path(tmp) / "val" / image["file_name"], path)
            paths.append(path)
    return paths


def _run(cmd, env):
    """Run ``cmd``, echoing its output; return the output. A failure raises ``UserError``."""
    print("\n$ " + " ".join(str(c) for c in cmd), flush=True)
    lines = []
    with subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=env) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            lines.append(line)
    sys.stdout.flush()
    if proc.returncode != 0:
        raise UserError(f"{Path(cmd[1]).name} failed (exit code {proc.returncode}); see its output "
                        "above")
    return "".join(lines)


def run_shapes_demo(data_dir="datasets/shapes", output_dir="outputs", device="cpu", opts=(),
                    python=sys.executable):
    """Build the data if missing, train, evaluate and draw; return a dict of the results.

    ``opts`` are extra ``KEY VALUE`` overrides given to every tool. Returns ``ap50_95``, ``ap50``
    (0..1, from tools/eval.py), ``pictures`` (the folder tools/demo.py wrote), ``checkpoint`` and
    ``seconds`` (wall time per step).
    """
    data_dir, output_dir = Path(data_dir), Path(output_dir)
    images = sorted((REPO_ROOT / "assets").glob(ASSET_PATTERN))
    if not images:
        raise UserError(f"no {ASSET_PATTERN} in {REPO_ROOT / 'assets'}: run "
                        "python tools/run_demo.py --write-assets")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p))
    exp = ["-f", DEMO_EXP]
    overrides = ["data_dir", data_dir, "output_dir", output_dir, *opts]
    seconds = {}

    start = time.perf_counter()
    if not all((data_dir / "annotations" / f"{s}.json").is_file() for s in ("train", "val")):
        _run([python, REPO_ROOT / "tools/make_shapes_dataset.py", "--out", data_dir], env)
    seconds["dataset"] = time.perf_counter() - start

    start = time.perf_counter()
    _run([python, REPO_ROOT / "tools/train.py", *exp, "--device", device, *overrides], env)
    seconds["train"] = time.perf_counter() - start
    ckpt = output_dir / DEMO_EXP.stem / "best_ckpt.pth"

    start = time.perf_counter()
    out = _run([python, REPO_ROOT / "tools/eval.py", *exp, "-c", ckpt, "--device", device,
                *overrides], env)
    seconds["eval"] = time.perf_counter() - start
    ap = dict(_AP_LINE.findall(out))
    if set(ap) != {"0.50:0.95", "0.50"}:
        raise UserError("tools/eval.py printed no COCO AP summary")

    start = time.perf_counter()
    staging = output_dir / DEMO_EXP.stem / "demo_images"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for image in images:
        shutil.copyfile(image, staging / image.name)
    out = _run([python, REPO_ROOT / "tools/demo.py", "image", *exp, "-c", ckpt, "--path", staging,
                "--conf", "0.3", "--save_result", "--device", device, *overrides], env)
    seconds["demo"] = time.perf_counter() - start
    saved = _SAVED.findall(out)
    if not saved:
        raise UserError("tools/demo.py did not say where it saved the pictures")
    return dict(ap50_95=float(ap["0.50:0.95"]), ap50=float(ap["0.50"]), pictures=saved[-1].strip(),
                checkpoint=str(ckpt), seconds=seconds)

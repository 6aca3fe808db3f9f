#!/usr/bin/env python3
"""End-to-end parity with PaddleDetection for EVERY SOLOv2 exp that has a Paddle config.

    python benchmarks/parity_all_solov2.py [--jobs 2] [--size 512,852] [NAME ...]

The slow companion of tests/test_solov2_end_to_end_parity.py (which covers R50-FPN 3x and R50
enhance at 256x416 in CI), with the same procedure and tolerances at a realistic size: ppdet
builds each model from ../shared/paddledet_configs/solov2/ with random weights and statistics and
saves the .pdparams; tools/convert_weights.py converts it; Paddle's EvalReader + model and our
Predictor run on three generated image files whose keep-ratio resize to the size gives multiples
of 32. Prints one table row per config and image and exits with status 1 if any row fails. Needs
the Paddle environment (MMDET_LITE_PADDLE_PYTHON).
"""
import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from tabulate import tabulate

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

import test_solov2_end_to_end_parity as e2e  # noqa: E402

from mmdet_lite.exp import get_exp  # noqa: E402
from mmdet_lite.exp.build import parse_tsize  # noqa: E402

from bench_common import run_in_folder  # noqa: E402
from conftest import PADDLE_CONFIGS  # noqa: E402

# Keep-ratio resized to 512x852: 512x832, 512x768 (downscaled) and 512x768 (upscaled).
IMAGE_SIZES = [(512, 832), (640, 960), (384, 576)]


def configs_with_paddle_yml():
    """Exp names in exps/solov2/ whose PaddleDetection config exists."""
    names = sorted(p.stem for p in (REPO_ROOT / "exps/solov2").glob("solov2_*.py"))
    return [n for n in names if (PADDLE_CONFIGS / "solov2" / f"{n}.yml").is_file()]


def run_one(name, root, images, size):
    return run_in_folder(name, root, lambda work: e2e.run_config(name, work, images, size))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("names", nargs="*", help="exp names (default: every one with a Paddle yml)")
    parser.add_argument("--jobs", type=int, default=2, help="configs processed at once")
    parser.add_argument("--size", default="512,852", help="EvalReader resize target h,w")
    args = parser.parse_args(argv)
    names = args.names or configs_with_paddle_yml()
    size = parse_tsize(args.size)
    torch.set_num_threads(1)
    rows, errors = [], []
    with tempfile.TemporaryDirectory() as root:
        images = e2e.make_images(root, IMAGE_SIZES)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(lambda n: run_one(n, root, images, size), names))
    for name, stats, error in results:
        if error:
            errors.append(f"{name}: {error}")
            rows.append([name] + ["-"] * 10 + ["ERROR"])
            continue
        pixel_std = get_exp(REPO_ROOT / "exps/solov2" / f"{name}.py").pixel_std
        for k, s in enumerate(stats):
            ok = not e2e.parity_failures([s], pixel_std)
            rows.append([name, f"{IMAGE_SIZES[k][0]}x{IMAGE_SIZES[k][1]}", f"{s['input']:.1e}",
                         f"{s['backbone']:.1e}", f"{s['neck']:.1e}",
                         f"{s['cate_flips']} ({s['cate_off_tie']})", f"{s['kernel']:.1e}",
                         f"{s['mask_feat']:.1e}",
                         f"{s['num_ours']}/{s['num_paddle']} "
                         f"{'yes' if s['labels_equal'] else 'NO'}",
                         f"{s['det_score']:.1e} ({s['det_score_ties']})", f"{s['mask_iou']:.4f}",
                         s["file_instances"], "ok" if ok else "FAIL"])
    headers = ["config", "image", "input", "backbone", "neck", "cate flips", "kernels",
               "mask feats", "instances", "max score diff", "min mask IoU", "from files",
               "result"]
    print(tabulate(rows, headers=headers, tablefmt="github"))
    print(f"\nsize {size[0]}x{size[1]}; input: max |diff| of the normalised inputs from the files "
          "(one uint8 level allowed); backbone / neck / kernels / mask feats: max |diff| / max(1, "
          "max |Paddle|) on Paddle's input; cate flips: point-NMS'ed scores differing by > "
          f"{e2e.OUTPUT_TOL} (of them at no near-tie); instances: count ours/Paddle, labels "
          "equal in order; max score diff (instances > SCORE_TOL at a mask near-tie); from "
          "files: instance counts ours/Paddle from the image files (informative)")
    for line in errors:
        print(line)
    failed = errors or any(row[-1] != "ok" for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

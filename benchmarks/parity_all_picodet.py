#!/usr/bin/env python3
"""End-to-end parity with PaddleDetection for EVERY PicoDet exp that has a Paddle config.

    python benchmarks/parity_all_picodet.py [--jobs 2] [NAME ...]

The slow companion of tests/test_end_to_end_parity.py (which covers S-416 and L-640 in CI), with
the same procedure and tolerances: ppdet builds each model from ../shared/paddledet_configs/ with
random weights and BN statistics and saves the .pdparams; tools/convert_weights.py converts it;
Paddle's TestReader + model and our Predictor run on three image files of different sizes. Prints
one table row per config and image (max abs differences, detection counts and agreement) and
exits with status 1 if any row fails. Needs the Paddle environment (MMDET_LITE_PADDLE_PYTHON).
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

import test_end_to_end_parity as e2e  # noqa: E402

from bench_common import run_in_folder  # noqa: E402
from conftest import PADDLE_CONFIGS  # noqa: E402


def configs_with_paddle_yml():
    """Exp names in exps/picodet/ whose PaddleDetection config exists."""
    names = sorted(p.stem for p in (REPO_ROOT / "exps/picodet").glob("picodet_*.py"))
    return [n for n in names if (PADDLE_CONFIGS / "picodet" / f"{n}.yml").is_file()]


def run_one(name, root, images):
    return run_in_folder(name, root, lambda work: e2e.run_config(name, work, images))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("names", nargs="*", help="exp names (default: every one with a Paddle yml)")
    parser.add_argument("--jobs", type=int, default=2, help="configs processed at once")
    args = parser.parse_args(argv)
    names = args.names or configs_with_paddle_yml()
    torch.set_num_threads(1)
    rows, errors = [], []
    with tempfile.TemporaryDirectory() as root:
        images = e2e.make_images(root)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(lambda n: run_one(n, root, images), names))
    for name, stats, error in results:
        if error:
            errors.append(f"{name}: {error}")
            rows.append([name] + ["-"] * 6 + ["ERROR"])
            continue
        for k, s in enumerate(stats):
            ok = not e2e.parity_failures([s])
            dets = [f"{d['num_ours']}/{d['num_paddle']} {'yes' if d['labels_equal'] else 'NO'} "
                    f"{d['det_score']:.1e} {d['det_box']:.1e}" for d in (s["dets"], s["dets_thr"])]
            rows.append([name, Path(images[k]).name, f"{s['input']:.1e}", f"{s['raw_score']:.1e}",
                         f"{s['raw_box']:.1e}", *dets, "ok" if ok else "FAIL"])
    headers = ["config", "image", "input", "raw scores", "raw boxes", "dets: top-k bound",
               "dets: threshold bound", "result"]
    print(tabulate(rows, headers=headers, tablefmt="github"))
    print("\ndets columns: count ours/paddle, labels equal in Paddle's order, max |score diff|, "
          "max |box diff| px; 'top-k bound' is the config's NMS (keep_top_k decides the count), "
          "'threshold bound' a per-image score threshold above ~60 pairs")
    print(f"tolerances (max abs): input {e2e.INPUT_TOL}, raw scores {e2e.SCORE_TOL}, raw boxes "
          f"{e2e.RAW_BOX_TOL} px, detection scores {e2e.SCORE_TOL}, detection boxes "
          f"{e2e.DET_BOX_TOL} px")
    for line in errors:
        print(line)
    failed = errors or any(row[-1] != "ok" for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

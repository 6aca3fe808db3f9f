#!/usr/bin/env python3
"""RT-DETR parity with HF transformers' RTDetrForObjectDetection for every exp HF can express.

    python benchmarks/parity_all_rtdetr.py [--configs NAME ...] [--size 640] [--batch 1]
        [--threads 1]

For each of the seven COCO exps (r18vd, r34vd, r50vd, r50vd_m, r101vd, hgnetv2_l, hgnetv2_x) the
whole detector (backbone, HybridEncoder, decoder) gets random weights, and HF's model the same
ones (benchmarks/rtdetr_hf.py: the tests' name mappings, every HF tensor set); both run in eval
mode on the same random 0..255 images (``--batch`` x 3 x ``--size`` x ``--size``). As in
tests/models/test_rtdetr_parity.py the table compares: the encoder's output maps (backbone and
HybridEncoder), the encoder-head class logits before the query selection, whether the selected
top-k query sets are equal (and the score margin at the cut; see ``query_orders`` for the border
positions, which random weights at 640 often select), the decoder's logits and boxes at
the exp's ``eval_idx`` layer (HF has no ``eval_idx``: its intermediate outputs of that layer;
queries aligned on the memory index), and the final detections (our detr_postprocess vs HF's
``post_process_object_detection``, matched one to one; boxes in pixels of 640x480 originals).
Differences are max absolute values (relative to the largest value for the encoder maps, whose
scale is arbitrary); nothing is asserted.
"""
import argparse
import sys
import time
from pathlib import Path

import torch
from tabulate import tabulate
from transformers import RTDetrImageProcessor

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mmdet_lite.models.post_process.detr_postprocess import detr_postprocess  # noqa: E402
from mmdet_lite.models.transformers.position_encoding import generate_anchors  # noqa: E402

from rtdetr_hf import EXPS, build_pair  # noqa: E402
from test_rtdetr_parity import match_detections, take  # noqa: E402

ORIG_SIZE = (480.0, 640.0)


def max_diff(a, b):
    return (a - b).abs().max().item()


def query_orders(ours_class, hf_class, num_queries, valid):
    """Top-k queries of both sides aligned on the memory index, whether the selected sets are
    equal, and the selection's margin (HF's scores).

    Positions with an invalid anchor (``valid (B, S)`` False: the map border at 640) all start
    the same query (zeroed memory, infinite anchor) and tie in score; they count as one position,
    sorted last. The margin is the smallest gap between the k-th and (k+1)-th best scores, or
    "tie" when the cut falls among those identical queries.
    """
    orders, keys = [], []
    for scores in (ours_class, hf_class):
        index = torch.topk(scores.max(-1).values, num_queries, dim=1).indices
        key = torch.where(valid.gather(1, index), index, valid.shape[1])
        orders.append(key.argsort(dim=-1, stable=True))
        keys.append(key.sort(-1).values)
    same = torch.equal(*keys)
    best, index = hf_class.max(-1).values.sort(-1, descending=True)
    cut_invalid = ~valid.gather(1, index[:, num_queries - 1:num_queries + 1]).any(-1)
    margin = (best[:, num_queries - 1] - best[:, num_queries]).min().item()
    margin = "tie" if bool(cut_invalid.any()) and margin == 0 else f"{margin:.1e}"
    return orders[0], orders[1], same, margin


def detections_diff(logits, boxes, hf_out, size, num_top):
    batch = logits.shape[0]
    orig = torch.tensor([ORIG_SIZE] * batch)
    scale_factors = size / orig
    ours = detr_postprocess(logits, boxes, torch.full((batch, 2), float(size)), scale_factors,
                            num_top)
    theirs = RTDetrImageProcessor().post_process_object_detection(hf_out, threshold=-1.0,
                                                                  target_sizes=orig)
    scores, box_px = 0.0, 0.0
    for mine, ref in zip(ours, theirs):
        a, b = match_detections(mine, ref)
        scores = max(scores, max_diff(mine.scores[a], ref["scores"][b]))
        box_px = max(box_px, max_diff(mine.boxes[a], ref["boxes"][b]))
    return scores, box_px


def compare(name, size, batch):
    tic = time.perf_counter()
    exp, ours, hf = build_pair(name, size)
    ours.eval(), hf.eval()
    images = torch.randint(0, 256, (batch, 3, size, size),
                           generator=torch.Generator().manual_seed(0)).float()
    with torch.no_grad():
        feats = ours.forward_features(ours.normalize(images))
        queries = ours.decoder.select_queries(*ours.decoder.flatten_memory(feats))
        logits, boxes = ours(images)
        out = hf(pixel_values=images / 255.0)
    num_queries = exp.decoder["num_queries"]
    valid = generate_anchors(ours.decoder.flatten_memory(feats)[1])[1][..., 0].expand(batch, -1)
    order, hf_order, same, margin = query_orders(queries["enc_outputs_class"],
                                                 out.enc_outputs_class, num_queries, valid)
    eval_idx = exp.decoder["eval_idx"]
    out.logits = out.intermediate_logits[:, eval_idx]
    out.pred_boxes = out.intermediate_reference_points[:, eval_idx]
    det_scores, det_boxes = detections_diff(logits, boxes, out, size, exp.num_top_queries)
    enc_pairs = zip(feats, out.encoder_last_hidden_state)
    return [name, f"{exp.backbone['name']} {exp.backbone.get('depth', exp.backbone.get('arch'))}",
            exp.decoder["num_decoder_layers"], eval_idx,
            f"{max(max_diff(a, b) / a.abs().max().item() for a, b in enc_pairs):.1e}",
            f"{max_diff(queries['enc_outputs_class'], out.enc_outputs_class):.1e}",
            f"{'yes' if same else 'NO'} ({margin})",
            f"{max_diff(take(logits, order), take(out.logits, hf_order)):.1e}",
            f"{max_diff(take(boxes, order), take(out.pred_boxes, hf_order)):.1e}",
            f"{det_scores:.1e}", f"{det_boxes:.1e}", f"{time.perf_counter() - tic:.0f}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(EXPS), choices=list(EXPS))
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.configs:
        rows.append(compare(name, args.size, args.batch))
        print(" | ".join(map(str, rows[-1])), flush=True)
    print(f"\nRT-DETR vs HF RTDetrForObjectDetection, random weights, batch {args.batch} at "
          f"{args.size}x{args.size} (max abs differences; encoder maps relative to their largest "
          "value)")
    print(tabulate(rows, headers=["exp", "backbone", "dec layers", "eval_idx", "encoder maps (rel)",
                                  "enc class logits", "same top-k (margin)", "logits", "boxes",
                                  "det scores", "det boxes (px)", "s"], tablefmt="github"))


if __name__ == "__main__":
    main()

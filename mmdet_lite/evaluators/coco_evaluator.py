"""COCO evaluation: run a detector over an eval loader, write COCO results, compute the stats."""
import contextlib
import io
import itertools
import json
import os
import time

import numpy as np
import torch
import torch.distributed as dist
from loguru import logger
from tabulate import tabulate
from tqdm import tqdm

from mmdet_lite.models.architectures.base import POSTPROCESS_SIZES
from mmdet_lite.utils.device import preferred_memory_format
from mmdet_lite.utils.dist import all_gather_object, get_rank, is_dist
from mmdet_lite.utils.fileio import ensure_writable_dir, write_json_atomic
from mmdet_lite.utils.tensors import to_float32

__all__ = ["COCOEvaluator", "evaluate_detections", "detections_to_coco", "format_summary",
           "per_class_table"]

_SUMMARY_ROWS = (  # (is_ap, iou_thr, area, max_dets): pycocotools' twelve summary lines
    (1, None, "all", 100), (1, 0.5, "all", 100), (1, 0.75, "all", 100),
    (1, None, "small", 100), (1, None, "medium", 100), (1, None, "large", 100),
    (0, None, "all", 1), (0, None, "all", 10), (0, None, "all", 100),
    (0, None, "small", 100), (0, None, "medium", 100), (0, None, "large", 100),
)


def format_summary(stats):
    """The twelve lines pycocotools' ``COCOeval.summarize`` prints, for ``stats`` (12,)."""
    lines = []
    for value, (is_ap, iou, area, max_dets) in zip(stats, _SUMMARY_ROWS):
        title, kind = ("Average Precision", "(AP)") if is_ap else ("Average Recall", "(AR)")
        iou_str = "0.50:0.95" if iou is None else f"{iou:0.2f}"
        lines.append(f" {title:<18} {kind} @[ IoU={iou_str:<9} | area={area:>6s} | "
                     f"maxDets={max_dets:>3d} ] = {value:0.3f}")
    return "\n".join(lines)


def per_class_table(per_class, columns=3):
    """A ``tabulate`` grid of ``[(name, ap), ...]`` in ``columns`` (category, AP) pairs."""
    flat = list(itertools.chain(*[(name, f"{ap:0.3f}") for name, ap in per_class]))
    columns = max(1, min(columns, len(per_class)))
    rows = itertools.zip_longest(*[flat[i::2 * columns] for i in range(2 * columns)])
    return tabulate(list(rows), headers=["category", "AP"] * columns, tablefmt="pipe",
                    numalign="left")


def _backend():
    """(COCO class, COCOeval class, is_faster): faster-coco-eval when importable."""
    try:
        from faster_coco_eval import COCO, COCOeval_faster

        return COCO, COCOeval_faster, True
    except ImportError:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        return COCO, COCOeval, False


def _gt_dict(coco_gt):
    if isinstance(coco_gt, dict):
        return coco_gt
    if isinstance(coco_gt, (str, os.PathLike)):
        from mmdet_lite.data.coco import load_coco_json

        return load_coco_json(coco_gt)
    return coco_gt.dataset


def evaluate_detections(coco_gt, results, iou_type="bbox"):
    """COCO stats of ``results`` (a COCO results list) against ``coco_gt``.

    Args:
        coco_gt: a COCO annotation dict, its JSON path, or a ``COCO`` object (pycocotools or
            faster-coco-eval).
        results: list of dicts ``image_id, category_id, bbox`` (xywh) or ``segmentation`` (RLE),
            ``score``. Not modified.
        iou_type: ``"bbox"`` or ``"segm"``.
    Returns:
        ``(stats, per_class)``: ``stats`` the twelve pycocotools numbers (list of float),
        ``per_class`` a list ``[(category name, AP@[.5:.95])]`` in category-id order
        (nan for a category without ground truth). No detection, or a ground truth without any
        non-crowd box (where pycocotools gives -1), gives zeros and a warning.
    """
    gt_data = _gt_dict(coco_gt)
    cats = sorted(gt_data["categories"], key=lambda c: c["id"])
    if not any(not a.get("iscrowd", 0) for a in gt_data.get("annotations") or ()):
        logger.warning("the evaluation set has no ground-truth box to match (no annotation, or "
                       "only crowd ones): every AP is 0")
        return [0.0] * 12, [(str(c["name"]), 0.0) for c in cats]
    if not results:
        logger.warning(f"no {iou_type} detections at all: every AP is 0")
        return [0.0] * 12, [(str(c["name"]), 0.0) for c in cats]
    coco_cls, eval_cls, faster = _backend()
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        if faster:
            gt = coco_cls(gt_data, use_deepcopy=True, print_function=lambda *a, **k: None)
        else:
            gt = coco_cls()
            gt.dataset = json.loads(json.dumps(gt_data))
            gt.createIndex()
        dt = gt.loadRes([dict(r) for r in results])
        if faster:
            coco_eval = eval_cls(gt, dt, iou_type, print_function=lambda *a, **k: None)
        else:
            coco_eval = eval_cls(gt, dt, iou_type)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    stats = [float(s) for s in coco_eval.stats[:12]]
    precision = np.asarray(coco_eval.eval["precision"])  # (T, R, K, A, M)
    per_class = []
    for k, cat in enumerate(cats):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        per_class.append((str(cat["name"]), float(np.mean(p)) if p.size else float("nan")))
    return stats, per_class


def detections_to_coco(detections, image_ids, class_ids, orig_sizes=None):
    """Per-image ``Detections`` -> COCO results lists ``(bbox_results, segm_results)``.

    ``detections[i]`` (``mmdet_lite.models.post_process.detections.Detections``): ``boxes``
    (K, 4) x1y1x2y2 float32 original pixels, ``scores`` (K,), ``labels`` (K,) contiguous indices,
    optional ``masks`` (K, H, W) bool in original pixels (RLE-encoded into ``segm_results``).
    ``orig_sizes`` (N, 2) (h, w), when given, is checked against each image's mask size.
    Like ppdet's ``get_det_res``, the float32 values are taken as they are (``w = x2 - x1`` in
    double) and entries with a negative label are dropped.
    """
    from pycocotools import mask as mask_utils

    bbox_res, segm_res = [], []
    for i, (det, image_id) in enumerate(zip(detections, image_ids)):
        image_id = int(image_id)
        scores = det.scores.detach().float().cpu().tolist()
        labels = det.labels.detach().cpu().long().tolist()
        boxes = det.boxes.detach().float().cpu().reshape(-1, 4).tolist()
        for (x1, y1, x2, y2), score, label in zip(boxes, scores, labels):
            if label >= 0:
                bbox_res.append(dict(image_id=image_id, category_id=class_ids[label],
                                     bbox=[x1, y1, x2 - x1, y2 - y1], score=score))
        if det.masks is None:
            continue
        if orig_sizes is not None and tuple(det.masks.shape[-2:]) != tuple(
                int(v) for v in orig_sizes[i]):
            raise ValueError(f"image {image_id}: masks are {tuple(det.masks.shape[-2:])} but the "
                             f"original image is {tuple(int(v) for v in orig_sizes[i])} (h, w): "
                             "a model's masks must be in original pixels")
        if not len(labels):
            continue
        masks = det.masks.detach().cpu().numpy().astype(np.uint8)
        rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0)))
        for rle, score, label in zip(rles, scores, labels):
            if label >= 0:
                rle["counts"] = rle["counts"].decode("utf-8")
                segm_res.append(dict(image_id=image_id, category_id=class_ids[label],
                                     segmentation=rle, score=score))
    return bbox_res, segm_res


class COCOEvaluator:
    """COCO-style evaluation of a detector over ``dataset`` (a ``COCODataset`` or ``VOCDataset``).

    ``evaluate`` runs ``model(images)`` (images float32 (N, 3, H, W), 0..255 RGB) and
    ``model.postprocess(outputs, scale_factors, input_sizes, orig_sizes)`` (the batch's sizes,
    see ``mmdet_lite.data.loader.eval_collate``; the ``Detector`` contract) on every batch of the
    loader, writes ``bbox.json`` (and ``segm.json`` when the ``Detections`` carry ``masks``) and
    computes the COCO stats on rank 0.

    Args:
        dataset: provides ``coco`` (ground truth), ``class_ids`` and ``class_names``.
        per_class_ap: also log a per-category AP table.
    """

    def __init__(self, dataset, per_class_ap=True):
        self.dataset = dataset
        self.per_class_ap = per_class_ap
        self.last_stats = {}

    def _sync(self, device):
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    @torch.no_grad()
    def _run(self, model, loader, device, fp16, show_progress=False):
        net = model.module if hasattr(model, "module") else model
        was_training = net.training
        net.eval()
        use_amp = fp16 and device.type == "cuda"
        if fp16 and not use_amp:
            logger.warning("fp16 evaluation needs a GPU; evaluating in float32")
        bbox_res, segm_res = [], []
        forward_t = nms_t = 0.0
        num_images = 0
        try:
            # a progress bar on rank 0 when stderr is a terminal (tqdm's disable=None)
            for batch in tqdm(loader, desc="eval", unit="batch", leave=False,
                              disable=None if show_progress else True):
                images = batch["images"].to(device, non_blocking=True).float()
                images = images.contiguous(memory_format=preferred_memory_format(device))
                sizes = [batch[key].to(device) for key in POSTPROCESS_SIZES]
                self._sync(device)
                t0 = time.perf_counter()
                with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                    outputs = net(images)
                outputs = to_float32(outputs)
                self._sync(device)
                t1 = time.perf_counter()
                detections = net.postprocess(outputs, *sizes)
                self._sync(device)
                t2 = time.perf_counter()
                forward_t += t1 - t0
                nms_t += t2 - t1
                num_images += len(batch["image_ids"])
                b, s = detections_to_coco(detections, batch["image_ids"], self.dataset.class_ids,
                                          batch["orig_sizes"])
                bbox_res += b
                segm_res += s
        finally:
            net.train(was_training)
        return bbox_res, segm_res, (forward_t, nms_t, num_images)

    def evaluate(self, model, loader, device, fp16=False, distributed=False, output_dir=None):
        """Evaluate ``model`` on this rank's ``loader`` shard; gather and score on rank 0.

        Returns ``(ap50_95, ap50, summary_text, stats)`` (stats: the twelve COCO numbers) on
        every rank; the primary metric is ``segm`` when the model returns masks, else ``bbox``.
        """
        device = torch.device(device)
        distributed = distributed and is_dist()
        rank = get_rank() if distributed else 0
        if output_dir is not None:
            self._on_rank0(ensure_writable_dir, distributed, rank, output_dir)
        bbox_res, segm_res, timing = self._run(model, loader, device, fp16, rank == 0)
        if distributed:
            gathered = all_gather_object((bbox_res, segm_res, timing))
            order = {img_id: i for i, img_id in enumerate(self.dataset.image_ids)}
            bbox_res = sorted(itertools.chain(*[g[0] for g in gathered]),
                              key=lambda r: order.get(r["image_id"], -1))
            segm_res = sorted(itertools.chain(*[g[1] for g in gathered]),
                              key=lambda r: order.get(r["image_id"], -1))
            timing = tuple(sum(g[2][i] for g in gathered) for i in range(3))
        return self._on_rank0(self._score, distributed, rank, bbox_res, segm_res, timing,
                              output_dir)

    @staticmethod
    def _on_rank0(func, distributed, rank, *args):
        """Run ``func`` on rank 0 and hand its result (or its exception) to every rank."""
        outcome = [None]
        if rank == 0:
            try:
                outcome[0] = (True, func(*args))
            except Exception as err:  # re-raised below, on every rank, so none waits forever
                outcome[0] = (False, err)
        if distributed:
            dist.broadcast_object_list(outcome, src=0)
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def _score(self, bbox_res, segm_res, timing, output_dir):
        forward_t, nms_t, num_images = timing
        n = max(num_images, 1)
        lines = [f"Average forward time: {1000 * forward_t / n:.2f} ms, Average NMS time: "
                 f"{1000 * nms_t / n:.2f} ms, Average inference time: "
                 f"{1000 * (forward_t + nms_t) / n:.2f} ms"]
        kinds = ([("bbox", bbox_res)] if bbox_res or not segm_res else []) + (
            [("segm", segm_res)] if segm_res else [])
        self.last_stats = {}
        for iou_type, res in kinds:
            if output_dir is not None:
                write_json_atomic(res, os.path.join(output_dir, f"{iou_type}.json"))
            stats, per_class = evaluate_detections(self.dataset.coco.dataset, res, iou_type)
            self.last_stats[iou_type] = stats
            lines += [f"Evaluate annotation type *{iou_type}*", format_summary(stats)]
            if self.per_class_ap:
                lines += [f"per class AP ({iou_type}):", per_class_table(per_class)]
        summary = "\n".join(lines)
        logger.info("\n" + summary)
        primary = self.last_stats["segm" if segm_res else "bbox"]
        return primary[0], primary[1], summary, primary

"""COCO evaluation: stats equal pycocotools', GT-as-detections gives AP 1, the evaluator loop."""
import contextlib
import io
import json

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmdet_lite.data.coco import COCODataset
from mmdet_lite.data.geometric import TestTransform
from mmdet_lite.data.loader import build_eval_loader, shard_indices
from mmdet_lite.data.synthetic import make_shapes_dataset
from mmdet_lite.evaluators import coco_evaluator
from mmdet_lite.evaluators.coco_evaluator import (
    COCOEvaluator,
    detections_to_coco,
    evaluate_detections,
    format_summary,
)
from mmdet_lite.models.post_process.detections import Detections
from mmdet_lite.utils.errors import UserError


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    make_shapes_dataset(root, num_train=0, num_val=24, seed=11)
    return root


@pytest.fixture(scope="module")
def gt_data(shapes):
    return json.loads((shapes / "annotations/val.json").read_text())


def _gt_as_results(gt_data, with_segm=False):
    results = []
    for ann in gt_data["annotations"]:
        res = dict(image_id=ann["image_id"], category_id=ann["category_id"], bbox=ann["bbox"],
                   score=1.0)
        if with_segm:
            img = next(i for i in gt_data["images"] if i["id"] == ann["image_id"])
            rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], img["height"],
                                                          img["width"]))
            res = dict(image_id=ann["image_id"], category_id=ann["category_id"],
                       segmentation=dict(size=rle["size"], counts=rle["counts"].decode()),
                       score=1.0)
        results.append(res)
    return results


def _noisy_results(gt_data, seed=0):
    """Jittered GT boxes, missed objects, duplicates, wrong classes and random false positives."""
    rng = np.random.default_rng(seed)
    cat_ids = [c["id"] for c in gt_data["categories"]]
    results = []
    for ann in gt_data["annotations"]:
        if rng.random() < 0.15:
            continue
        x, y, w, h = ann["bbox"]
        for _ in range(int(rng.integers(1, 3))):
            jit = rng.normal(0, 0.08, 4) * [w, h, w, h]
            cat = ann["category_id"] if rng.random() < 0.85 else int(rng.choice(cat_ids))
            results.append(dict(image_id=ann["image_id"], category_id=cat,
                                bbox=[x + jit[0], y + jit[1], max(1.0, w + jit[2]),
                                      max(1.0, h + jit[3])],
                                score=float(rng.random())))
    for img in gt_data["images"]:
        for _ in range(int(rng.integers(0, 4))):
            w, h = rng.uniform(5, 150, 2)
            results.append(dict(image_id=img["id"], category_id=int(rng.choice(cat_ids)),
                                bbox=[rng.uniform(0, img["width"] - w),
                                      rng.uniform(0, img["height"] - h), w, h],
                                score=float(rng.random())))
    return results


def _pycocotools_eval(ann_file, results, iou_type="bbox"):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        dt = gt.loadRes([dict(r) for r in results])
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def test_gt_as_detections_gives_ap_1(gt_data):
    stats, per_class = evaluate_detections(gt_data, _gt_as_results(gt_data))
    assert stats[0] == 1.0 and stats[1] == 1.0 and stats[2] == 1.0 and stats[8] == 1.0
    assert [name for name, _ in per_class] == ["circle", "square", "triangle", "hexagon", "star"]
    assert all(ap == 1.0 for _, ap in per_class)
    segm_stats, _ = evaluate_detections(gt_data, _gt_as_results(gt_data, with_segm=True), "segm")
    assert segm_stats[0] == 1.0


@pytest.mark.parametrize("force_pycocotools", [False, True])
def test_stats_equal_pycocotools(shapes, gt_data, monkeypatch, force_pycocotools):
    if force_pycocotools:  # the fallback path used when faster-coco-eval is missing
        def _no_faster():
            return COCO, COCOeval, False
        monkeypatch.setattr(coco_evaluator, "_backend", _no_faster)
    else:
        assert coco_evaluator._backend()[2], "faster-coco-eval should be installed"
    results = _noisy_results(gt_data)
    before = json.dumps(results)
    stats, per_class = evaluate_detections(shapes / "annotations/val.json", results)
    assert json.dumps(results) == before  # the caller's results are not modified
    ev = _pycocotools_eval(shapes / "annotations/val.json", results)
    assert len(stats) == 12 and 0.2 < stats[0] < 0.95
    assert np.max(np.abs(np.array(stats) - ev.stats)) < 1e-9
    for k, (_, ap) in enumerate(per_class):
        p = ev.eval["precision"][:, :, k, 0, -1]
        assert abs(ap - np.mean(p[p > -1])) < 1e-9


def test_no_detections_is_zero_not_a_crash(gt_data):
    stats, per_class = evaluate_detections(gt_data, [])
    assert stats == [0.0] * 12 and all(ap == 0.0 for _, ap in per_class)


def test_format_summary_matches_pycocotools(shapes, gt_data):
    results = _noisy_results(gt_data, seed=1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        gt = COCO(str(shapes / "annotations/val.json"))
        ev = COCOeval(gt, gt.loadRes([dict(r) for r in results]), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    printed = [line for line in out.getvalue().splitlines() if line.startswith(" Average")]
    assert format_summary(ev.stats).splitlines() == printed


def test_detections_to_coco_like_paddle():
    dets = [Detections(boxes=torch.tensor([[1.1, 2.2, 10.7, 20.3], [0.0, 0.0, 5.0, 5.0]]),
                       scores=torch.tensor([0.9, 0.3]), labels=torch.tensor([2, -1])),
            Detections(boxes=torch.zeros((0, 4)), scores=torch.zeros(0),
                       labels=torch.zeros(0, dtype=torch.int64))]
    bbox, segm = detections_to_coco(dets, [7, 8], class_ids=[1, 3, 7])
    assert segm == [] and len(bbox) == 1
    f = np.float32
    x1, y1, x2, y2 = (float(f(v)) for v in (1.1, 2.2, 10.7, 20.3))
    assert bbox[0] == dict(image_id=7, category_id=7, bbox=[x1, y1, x2 - x1, y2 - y1],
                           score=float(f(0.9)))


def test_mask_detections_become_segm_results_in_original_pixels():
    masks = torch.zeros((2, 6, 8), dtype=torch.bool)
    masks[0, 1:3, 2:5] = True
    masks[1, 4:6, 0:8] = True
    det = Detections(boxes=torch.tensor([[2.0, 1.0, 5.0, 3.0], [0.0, 4.0, 8.0, 6.0]]),
                     scores=torch.tensor([0.5, 0.25]), labels=torch.tensor([0, 1]), masks=masks)
    bbox, segm = detections_to_coco([det], [3], class_ids=[4, 9], orig_sizes=torch.tensor([[6, 8]]))
    assert [r["bbox"] for r in bbox] == [[2.0, 1.0, 3.0, 2.0], [0.0, 4.0, 8.0, 2.0]]
    assert [(r["image_id"], r["category_id"], r["score"]) for r in segm] == [(3, 4, 0.5),
                                                                            (3, 9, 0.25)]
    rles = [dict(r["segmentation"], counts=r["segmentation"]["counts"].encode()) for r in segm]
    assert all(isinstance(r["segmentation"]["counts"], str) for r in segm)
    assert mask_utils.area(rles).tolist() == [6, 16]
    assert mask_utils.toBbox(rles).tolist() == [r["bbox"] for r in bbox]
    assert all(r["segmentation"]["size"] == [6, 8] for r in segm)
    # Masks in any other size than the original image's (e.g. the network input's) are refused.
    with pytest.raises(ValueError, match=r"masks are \(6, 8\) but the original image is "
                                         r"\(12, 16\)"):
        detections_to_coco([det], [3], class_ids=[4, 9], orig_sizes=torch.tensor([[12, 16]]))


class _GTModel(torch.nn.Module):
    """Stand-in detector: its post-process returns the ground truth of the images in loader order
    (mapped through the scale factors it receives), optionally with masks."""

    def __init__(self, dataset, with_masks=False, indices=None):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.dataset, self.with_masks, self.calls, self.orig_sizes = dataset, with_masks, [], []
        self.order = iter(range(len(dataset)) if indices is None else indices)

    def forward(self, images):
        assert images.dtype == torch.float32 and images.shape[1:] == (3, 416, 416)
        return (images.mean(dim=(1, 2, 3)) * self.scale,)

    def postprocess(self, outputs, scale_factors, input_sizes, orig_sizes):
        self.calls.append(scale_factors.clone())
        self.orig_sizes += orig_sizes.tolist()
        dets = []
        for _ in range(len(outputs[0])):
            ann = self.dataset.get_annotation(next(self.order))
            det = Detections(boxes=torch.from_numpy(ann["boxes"]),
                             scores=torch.ones(len(ann["boxes"])),
                             labels=torch.from_numpy(ann["labels"]))
            if self.with_masks:  # decoded at the original image's size
                info = self.dataset.coco.imgs[ann["image_id"]]
                masks = [mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(
                    s, info["height"], info["width"]))) for s in ann["segmentations"]]
                det.masks = torch.from_numpy(np.stack(masks).astype(bool)) if masks else \
                    torch.zeros((0, info["height"], info["width"]), dtype=torch.bool)
            dets.append(det)
        return dets


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' decode under numpy 2
@pytest.mark.parametrize("with_masks", [False, True])
def test_evaluator_end_to_end(shapes, tmp_path, with_masks):
    ds = COCODataset(shapes, "annotations/val.json", "val", transform=TestTransform(416))
    loader = build_eval_loader(ds, batch_size=5, num_workers=0)
    model = _GTModel(ds, with_masks).train()
    evaluator = COCOEvaluator(ds)
    ap, ap50, summary, stats = evaluator.evaluate(model, loader, "cpu", output_dir=tmp_path / "out")
    assert model.training, "the model's train/eval mode is restored"
    assert (ap, ap50) == (1.0, 1.0) and len(stats) == 12 and stats[0] == 1.0
    assert "Average forward time:" in summary and "Average NMS time:" in summary
    assert summary.count("Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all") == 1 + with_masks
    assert "| hexagon" in summary
    assert all(c.dtype == torch.float32 and c.shape[1] == 2 for c in model.calls)
    infos = [ds.coco.imgs[ds.get_annotation(i)["image_id"]] for i in range(len(ds))]
    assert model.orig_sizes == [[info["height"], info["width"]] for info in infos]
    bbox = json.loads((tmp_path / "out/bbox.json").read_text())
    assert len(bbox) == sum(len(ds.get_annotation(i)["labels"]) for i in range(len(ds)))
    assert {r["category_id"] for r in bbox} == {1, 3, 7, 10, 15}
    assert (tmp_path / "out/segm.json").exists() == with_masks
    assert sorted(evaluator.last_stats) == (["bbox", "segm"] if with_masks else ["bbox"])
    if with_masks:  # the ground-truth masks as detections: segm AP 1.0, through RLE results
        assert evaluator.last_stats["segm"][:3] == [1.0, 1.0, 1.0]
        segm = json.loads((tmp_path / "out/segm.json").read_text())
        assert len(segm) == len(bbox)
        assert all(isinstance(r["segmentation"]["counts"], str) for r in segm)


def test_unwritable_output_dir(shapes, tmp_path):
    ds = COCODataset(shapes, "annotations/val.json", "val", transform=TestTransform(416))
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(UserError, match="file.txt"):
        COCOEvaluator(ds).evaluate(_GTModel(ds), build_eval_loader(ds, 4, 0), "cpu",
                                   output_dir=blocker / "out")


def _dist_worker(rank, world_size, shapes, out_dir):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{out_dir}/rendezvous", rank=rank,
                            world_size=world_size)
    try:
        ds = COCODataset(shapes, "annotations/val.json", "val", transform=TestTransform(416))
        loader = build_eval_loader(ds, 4, 0, rank=rank, world_size=world_size)
        model = _GTModel(ds, indices=shard_indices(len(ds), rank, world_size))
        result = COCOEvaluator(ds, per_class_ap=False).evaluate(
            model, loader, "cpu", distributed=True, output_dir=f"{out_dir}/eval")
        try:  # rank 0 cannot write: every rank gets the error instead of waiting forever
            COCOEvaluator(ds).evaluate(model, loader, "cpu", distributed=True,
                                       output_dir=f"{out_dir}/blocker/x")
        except UserError as err:
            result = [*result, str(err)]
        with open(f"{out_dir}/rank{rank}.json", "w") as f:
            json.dump(result, f)
    finally:
        dist.destroy_process_group()


def test_distributed_gather(shapes, tmp_path):
    (tmp_path / "blocker").write_text("a file, not a folder")
    torch.multiprocessing.start_processes(_dist_worker, args=(2, str(shapes), str(tmp_path)),
                                          nprocs=2, start_method="fork")
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert results[0] == results[1] and results[0][:2] == [1.0, 1.0]
    assert "blocker" in results[0][4]
    bbox = json.loads((tmp_path / "eval/bbox.json").read_text())
    gt = json.loads((shapes / "annotations/val.json").read_text())
    assert len(bbox) == len(gt["annotations"])
    assert [r["image_id"] for r in bbox] == sorted(r["image_id"] for r in bbox)

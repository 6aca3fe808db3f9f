"""ATSSAssigner and TaskAlignedAssigner against ppdet 2.6.0 run on the same inputs."""
import numpy as np
import pytest
import torch

from mmdet_lite.models.assigners import ATSSAssigner, TaskAlignedAssigner, pad_gt
from mmdet_lite.models.assigners.utils import topk_mask

from conftest import REPO_ROOT, run_paddle

SCRIPT = REPO_ROOT / "tests/reference/paddle_assigners_losses.py"


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    """ppdet's inputs and outputs; one Paddle run per session, shared with the loss tests."""
    path = tmp_path_factory.getbasetemp() / "paddle_assigners_losses.npz"
    if not path.exists():
        run_paddle(SCRIPT, path)
    with np.load(path) as data:
        return {k: torch.from_numpy(v) if v.ndim else v.item() for k, v in data.items()}


def gt_inputs(ref):
    return ref["gt_labels"], ref["gt_bboxes"], ref["pad_gt_mask"]


def assert_matches(ref, name, outputs):
    labels, bboxes, scores = outputs
    assert labels.dtype == torch.long and scores.dtype == torch.float32
    torch.testing.assert_close(labels, ref[f"{name}_labels"].long(), rtol=0, atol=0)
    torch.testing.assert_close(bboxes, ref[f"{name}_bboxes"], rtol=0, atol=0)
    torch.testing.assert_close(scores, ref[f"{name}_scores"], rtol=1e-4, atol=1e-5)
    assert (labels[2] == ref["num_classes"]).all() and (scores[2] == 0).all()  # image without GT


@pytest.mark.parametrize("name", ["atss_pred", "atss_gts", "atss_force"])
def test_atss_matches_ppdet(ref, name):
    assert ref["atss_multi_calls"] > 0, "inputs must exercise the several-GTs-per-anchor branch"
    extra = {"atss_pred": dict(pred_bboxes=ref["pred_bboxes"]),
             "atss_gts": dict(gt_scores=ref["gt_scores"]), "atss_force": {}}[name]
    assigner = ATSSAssigner(topk=9, num_classes=ref["num_classes"],
                            force_gt_matching=name == "atss_force")
    out = assigner(ref["anchors"], ref["num_anchors_list"].tolist(), *gt_inputs(ref),
                   bg_index=ref["num_classes"], **extra)
    assert_matches(ref, name, out)
    assert (out[0] != ref["num_classes"]).sum() > 10


def test_task_aligned_matches_ppdet(ref):
    assert ref["tal_multi_calls"] > 0, "inputs must exercise the several-GTs-per-anchor branch"
    out = TaskAlignedAssigner(topk=13, alpha=1.0, beta=6.0)(
        ref["pred_scores"], ref["pred_bboxes"], ref["anchor_points"],
        ref["num_anchors_list"].tolist(), *gt_inputs(ref), bg_index=ref["num_classes"])
    assert_matches(ref, "tal", out)
    assert out[2].max() <= 1.0 and (out[0] != ref["num_classes"]).sum() > 20


def test_batch_without_any_gt_slot(ref):
    num_classes, levels = ref["num_classes"], ref["num_anchors_list"].tolist()
    empty = (torch.zeros(2, 0, 1, dtype=torch.long), torch.zeros(2, 0, 4), torch.zeros(2, 0, 1))
    out = ATSSAssigner(9, num_classes)(ref["anchors"], levels, *empty, bg_index=num_classes)
    torch.testing.assert_close(out[0], ref["empty_atss_labels"].long())
    torch.testing.assert_close(out[2], ref["empty_atss_scores"])
    out = TaskAlignedAssigner()(ref["pred_scores"][:2], ref["pred_bboxes"][:2],
                                ref["anchor_points"], levels, *empty, bg_index=num_classes)
    torch.testing.assert_close(out[0], ref["empty_tal_labels"].long())
    torch.testing.assert_close(out[2], ref["empty_tal_scores"])
    assert out[1].shape == (2, ref["anchor_points"].shape[0], 4)


def test_all_gts_padded_gives_no_positive(ref):
    num_classes, levels = ref["num_classes"], ref["num_anchors_list"].tolist()
    labels, boxes, mask = gt_inputs(ref)
    mask = torch.zeros_like(mask)
    for out in (ATSSAssigner(9, num_classes)(ref["anchors"], levels, labels, boxes, mask,
                                             num_classes, pred_bboxes=ref["pred_bboxes"]),
                TaskAlignedAssigner()(ref["pred_scores"], ref["pred_bboxes"],
                                      ref["anchor_points"], levels, labels, boxes, mask,
                                      num_classes)):
        assert (out[0] == num_classes).all() and (out[2] == 0).all()


def test_low_precision_inputs_are_assigned_in_float32(ref):
    out = TaskAlignedAssigner()(ref["pred_scores"].half(), ref["pred_bboxes"].bfloat16(),
                                ref["anchor_points"], ref["num_anchors_list"].tolist(),
                                *gt_inputs(ref), bg_index=ref["num_classes"])
    assert out[2].dtype == torch.float32 and torch.isfinite(out[2]).all()
    assert (out[0] != ref["num_classes"]).any()


def test_topk_ties_go_to_the_lower_index():
    metrics = torch.tensor([[0.0, 2.0, 1.0, 1.0, 1.0, 0.0]])
    idxs, mask = topk_mask(metrics, 3, largest=True)
    assert idxs.tolist() == [[1, 2, 3]] and mask.tolist() == [[0, 1, 1, 1, 0, 0]]
    idxs, _ = topk_mask(metrics, 3, largest=False)
    assert idxs.tolist() == [[0, 5, 2]]
    assert topk_mask(metrics, 10)[0].shape == (1, 6)


def test_pad_gt():
    labels, boxes, mask = pad_gt([torch.tensor([3, 1]), torch.zeros(0, dtype=torch.long)],
                                 [torch.tensor([[1.0, 2, 3, 4], [5, 6, 7, 8]]), torch.zeros(0, 4)])
    assert labels.shape == (2, 2, 1) and boxes.shape == (2, 2, 4) and mask.shape == (2, 2, 1)
    assert labels[:, :, 0].tolist() == [[3, 1], [0, 0]]
    assert mask[:, :, 0].tolist() == [[1, 1], [0, 0]]
    assert boxes[1].abs().sum() == 0 and boxes[0, 1].tolist() == [5, 6, 7, 8]
    assert pad_gt([torch.zeros(0)], [torch.zeros(0, 4)])[1].shape == (1, 0, 4)

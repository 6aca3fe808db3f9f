"""One-to-one Hungarian matching of DETR queries to GT boxes (ppdet's / HF's HungarianMatcher)."""
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn
from torchvision.ops import box_convert, generalized_box_iou

__all__ = ["HungarianMatcher", "target_labels"]


def target_labels(target):
    """The (n,) class labels of one image's target dict: ``labels``, or HF's ``class_labels``."""
    return target["labels"] if "labels" in target else target["class_labels"]


class HungarianMatcher(nn.Module):
    """Matches each image's GT boxes to distinct queries by minimum total cost.

    cost = class_ * focal-style class cost (sigmoid; softmax ``-p`` when not ``use_focal_loss``)
    + bbox * L1 between cxcywh boxes + giou * (-GIoU), computed in float32 with autocast off,
    then ``scipy.optimize.linear_sum_assignment`` per image. Same costs as HF's
    RTDetrHungarianMatcher (torchvision's GIoU, no eps); ppdet adds eps=1e-10 to the GIoU
    denominators, a 1e-10-relative change that only matters for zero-area pairs. NaN / inf costs
    become the largest float (HF's guard; ppdet would raise), so a bad box is matched last.

    Args:
        matcher_coeff (dict | None): weights ``class_``, ``bbox``, ``giou`` (``class`` is accepted
            for ``class_``); default RT-DETR's ``dict(class_=2, bbox=5, giou=2)``.
        use_focal_loss (bool), alpha (float), gamma (float): class cost form.

    forward(logits (B, Q, C), boxes (B, Q, 4) normalised cxcywh, targets list of dict(labels (n,)
    (or HF's ``class_labels``), boxes (n, 4) cxcywh)) -> list of B pairs
    ``(query_idx (k,), gt_idx (k,))`` int64 on the logits' device, k = min(Q, n), query_idx
    ascending (scipy's order).
    """

    def __init__(self, matcher_coeff=None, use_focal_loss=True, alpha=0.25, gamma=2.0):
        super().__init__()
        coeff = dict(class_=2.0, bbox=5.0, giou=2.0)
        for key, value in (matcher_coeff or {}).items():
            key = "class_" if key == "class" else key
            if key not in coeff:
                raise ValueError(f"HungarianMatcher: unknown matcher_coeff key {key!r}")
            coeff[key] = float(value)
        self.matcher_coeff = coeff
        self.use_focal_loss = use_focal_loss
        self.alpha = alpha
        self.gamma = gamma

    @torch.no_grad()
    def forward(self, logits, boxes, targets):
        bs, num_queries = logits.shape[:2]
        device = logits.device
        sizes = [len(target_labels(t)) for t in targets]
        if sum(sizes) == 0:
            empty = torch.zeros(0, dtype=torch.int64, device=device)
            return [(empty, empty) for _ in range(bs)]
        with torch.autocast(device_type=device.type, enabled=False):
            cost = self._cost(logits.detach().flatten(0, 1).float(),
                              boxes.detach().flatten(0, 1).float(), targets, device)
        cost = torch.nan_to_num(cost, nan=torch.finfo(cost.dtype).max,
                                posinf=torch.finfo(cost.dtype).max,
                                neginf=torch.finfo(cost.dtype).max)
        cost = cost.view(bs, num_queries, -1).cpu()
        indices = [linear_sum_assignment(c[i].numpy()) for i, c in enumerate(cost.split(sizes, -1))]
        return [(torch.as_tensor(i, dtype=torch.int64, device=device),
                 torch.as_tensor(j, dtype=torch.int64, device=device)) for i, j in indices]

    def _cost(self, logits, boxes, targets, device):
        """(B*Q, C) logits and (B*Q, 4) boxes against all GT of the batch -> (B*Q, sum n)."""
        tgt_ids = torch.cat([target_labels(t) for t in targets]).to(device=device,
                                                                    dtype=torch.int64)
        tgt_boxes = torch.cat([t["boxes"] for t in targets]).to(device=device, dtype=torch.float32)
        if self.use_focal_loss:
            prob = logits.sigmoid()[:, tgt_ids]
            neg = (1 - self.alpha) * prob.pow(self.gamma) * -(1 - prob + 1e-8).log()
            pos = self.alpha * (1 - prob).pow(self.gamma) * -(prob + 1e-8).log()
            cost_class = pos - neg
        else:
            cost_class = -F.softmax(logits, dim=-1)[:, tgt_ids]
        cost_bbox = torch.cdist(boxes, tgt_boxes, p=1)
        cost_giou = -generalized_box_iou(box_convert(boxes, "cxcywh", "xyxy"),
                                         box_convert(tgt_boxes, "cxcywh", "xyxy"))
        c = self.matcher_coeff
        return c["class_"] * cost_class + c["bbox"] * cost_bbox + c["giou"] * cost_giou

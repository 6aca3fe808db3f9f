"""RT-DETR's training criterion: ppdet's DINOLoss (use_vfl=True) as DINOHead calls it.

Terms (each already multiplied by its ``loss_coeff``; ppdet's names):
``loss_class``, ``loss_bbox``, ``loss_giou``: last decoder layer, Hungarian-matched;
``loss_{class,bbox,giou}_aux``: summed over the encoder top-k proposals and decoder layers
0..L-2, each matched on its own; ``loss_{class,bbox,giou}_dn`` / ``..._aux_dn``: the denoising
queries of the last layer / of layers 0..L-2, matched by the fixed ``dn_positive_idx`` (GT j of
image i is the target of its copy in every group) and normalised by ``num_gts * dn_num_group``;
``total_loss``: the sum. Without denoising the ``_dn`` terms are zeros, as in ppdet.

Class loss (VFL on logits): target ``t`` = IoU(matched pred, GT) at the GT class of a matched
query, 0 elsewhere; ``w = alpha * sigmoid(x)^gamma * (1 - onehot) + t``;
``sum(BCEWithLogits(x, t) * w) / num_gts``. L1 and GIoU: sums over matched pairs / num_gts.
``num_gts`` = GT count of the batch, averaged over ranks when torch.distributed is initialised,
clamped to >= 1 (ppdet). Everything runs in float32 with autocast off.

Same values as HF's RTDetrLoss (whose per-layer keys ``loss_vfl_aux_i`` / ``..._dn_i`` sum to
ours). Where ppdet and HF differ we follow ppdet:
- ppdet does not detach ``sigmoid(x)`` in the VFL weight (gradient flows through ``w``); HF (and
  the original PyTorch RT-DETR) detach it. Same value, different logits gradient.
- ppdet averages num_gts over ranks; HF's RTDetrLoss does not reduce across ranks.
- ppdet's IoU for the VFL target adds eps=1e-9 to the union and GIoU eps=1e-10 (we do too).
- With no GT in the whole batch ppdet switches to sigmoid focal loss (alpha 0.25); with the
  default alpha 0.75 and zero targets that equals VFL in value and gradient, so we keep VFL.
"""
import torch
import torch.nn.functional as F
from torch import distributed as dist
from torch import nn
from torchvision.ops import box_convert

from ..assigners.hungarian_matcher import HungarianMatcher, target_labels
from .giou import GIoULoss

__all__ = ["DETRLoss", "RTDETRCriterion"]

_TERMS = ("class", "bbox", "giou")


def _aligned_iou(boxes1, boxes2, eps=1e-9):
    """IoU of aligned (N, 4) x1y1x2y2 pairs -> (N,), as ppdet's bbox_iou (areas clipped, eps)."""
    lt = torch.max(boxes1[:, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, 2:], boxes2[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    area1 = ((boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])).clamp(min=0)
    area2 = ((boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])).clamp(min=0)
    return inter / (area1 + area2 - inter + eps)


class DETRLoss(nn.Module):
    """Hungarian set loss of RT-DETR with auxiliary, encoder and denoising terms.

    Args:
        num_classes (int): C.
        matcher (HungarianMatcher | None): default ``HungarianMatcher()`` (class 2, bbox 5,
            giou 2, focal cost alpha 0.25).
        loss_coeff (dict | None): ``class_``, ``bbox``, ``giou`` (``class`` accepted); default
            ``dict(class_=1, bbox=5, giou=2)``.
        aux_loss (bool): add the encoder / intermediate-layer terms and the dn aux terms.
        use_vfl (bool): VFL class loss; False gives ppdet's sigmoid focal loss (pass alpha=0.25).
        alpha (float), gamma (float): class loss parameters.

    forward(outputs, targets) -> dict of float32 scalars (names in the module doc).
    ``outputs`` (HF RTDetrForObjectDetection conventions; N = dn queries, 0 without denoising):
        ``intermediate_logits`` (B, L, N + Q, C) and ``intermediate_reference_points``
        (B, L, N + Q, 4) normalised cxcywh: every decoder layer, dn queries first. Without them
        ``logits`` (B, N + Q, C) / ``pred_boxes`` (B, N + Q, 4) are used as a single layer.
        ``enc_topk_logits`` (B, Q, C), ``enc_topk_bboxes`` (B, Q, 4): optional encoder proposals.
        ``denoising_meta_values``: optional dict ``dn_positive_idx`` / ``dn_num_group`` /
        ``dn_num_split`` = [N, Q] from ``get_contrastive_denoising_training_group``.
    ``targets``: list of B dicts ``labels`` (n,) int64 (or HF's ``class_labels``) and ``boxes``
    (n, 4) normalised cxcywh.
    """

    def __init__(self, num_classes, matcher=None, loss_coeff=None, aux_loss=True, use_vfl=True,
                 alpha=0.75, gamma=2.0):
        super().__init__()
        coeff = dict(class_=1.0, bbox=5.0, giou=2.0)
        for key, value in (loss_coeff or {}).items():
            key = "class_" if key == "class" else key
            if key not in coeff:
                raise ValueError(f"DETRLoss: unknown loss_coeff key {key!r}")
            coeff[key] = float(value)
        self.num_classes = num_classes
        self.matcher = matcher if matcher is not None else HungarianMatcher()
        self.loss_coeff = coeff
        self.aux_loss = aux_loss
        self.use_vfl = use_vfl
        self.alpha = alpha
        self.gamma = gamma
        self.giou_loss = GIoULoss(eps=1e-10, reduction="none")

    def forward(self, outputs, targets):
        if "intermediate_logits" in outputs:
            logits, boxes = outputs["intermediate_logits"], outputs["intermediate_reference_points"]
        else:
            logits, boxes = outputs["logits"][:, None], outputs["pred_boxes"][:, None]
        device = logits.device
        targets = [{"labels": target_labels(t).to(device=device, dtype=torch.int64),
                    "boxes": t["boxes"].to(device=device, dtype=torch.float32)} for t in targets]
        if len(targets) != logits.shape[0]:
            raise ValueError(f"DETRLoss: {len(targets)} targets for a batch of {logits.shape[0]}")
        dn_meta = outputs.get("denoising_meta_values")
        with torch.autocast(device_type=device.type, enabled=False):
            logits, boxes = logits.float(), boxes.float()
            if dn_meta is not None:
                if sum(dn_meta["dn_num_split"]) != logits.shape[2]:
                    raise ValueError(f"DETRLoss: dn_num_split {dn_meta['dn_num_split']} does not "
                                     f"add up to the {logits.shape[2]} decoder queries")
                dn_logits, logits = logits.split(dn_meta["dn_num_split"], dim=2)
                dn_boxes, boxes = boxes.split(dn_meta["dn_num_split"], dim=2)
            num_gts = self._num_gts(targets, device)
            layers = [(logits[:, i], boxes[:, i]) for i in range(logits.shape[1])]
            aux = layers[:-1]
            if "enc_topk_logits" in outputs:
                enc = (outputs["enc_topk_logits"].float(), outputs["enc_topk_bboxes"].float())
                aux = [enc] + aux
            losses = self._group(layers[-1], aux, targets, None, num_gts, "")
            if dn_meta is not None:
                dn_layers = [(dn_logits[:, i], dn_boxes[:, i]) for i in range(dn_logits.shape[1])]
                indices = self._dn_indices(targets, dn_meta, device)
                losses.update(self._group(dn_layers[-1], dn_layers[:-1], targets, indices,
                                          num_gts * dn_meta["dn_num_group"], "_dn"))
            else:
                losses.update({f"{k}_dn": torch.zeros((), device=device) for k in list(losses)})
        losses["total_loss"] = sum(losses.values())
        return losses

    def _group(self, main, aux, targets, indices, num_gts, postfix):
        """Terms of the ``main`` (logits, boxes) layer plus (if aux_loss)
        the summed ``aux`` ones."""
        losses = {f"loss_{k}{postfix}": v for k, v in
                  zip(_TERMS, self._layer_loss(*main, targets, indices, num_gts))}
        if self.aux_loss:
            sums = [torch.zeros((), device=num_gts.device) for _ in _TERMS]
            for layer_logits, layer_boxes in aux:
                terms = self._layer_loss(layer_logits, layer_boxes, targets, indices, num_gts)
                sums = [s + t for s, t in zip(sums, terms)]
            losses.update({f"loss_{k}_aux{postfix}": v for k, v in zip(_TERMS, sums)})
        return losses

    def _layer_loss(self, logits, boxes, targets, indices, num_gts):
        """(class, bbox, giou) weighted terms of one layer; Hungarian when indices is None."""
        if indices is None:
            indices = self.matcher(logits, boxes, targets)
        batch_idx = torch.cat([torch.full_like(q, i) for i, (q, _) in enumerate(indices)])
        query_idx = torch.cat([q for q, _ in indices])
        tgt_labels = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, indices)])
        tgt_boxes = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices)])
        src_boxes = boxes[batch_idx, query_idx]
        src_xyxy = box_convert(src_boxes, "cxcywh", "xyxy")
        tgt_xyxy = box_convert(tgt_boxes, "cxcywh", "xyxy")
        ious = _aligned_iou(src_xyxy.detach(), tgt_xyxy)
        loss_class = self._class_loss(logits, batch_idx, query_idx, tgt_labels, ious, num_gts)
        loss_bbox = (src_boxes - tgt_boxes).abs().sum() / num_gts
        loss_giou = self.giou_loss(src_xyxy, tgt_xyxy).sum() / num_gts
        c = self.loss_coeff
        return c["class_"] * loss_class, c["bbox"] * loss_bbox, c["giou"] * loss_giou

    def _class_loss(self, logits, batch_idx, query_idx, tgt_labels, ious, num_gts):
        bs, num_queries, num_classes = logits.shape
        target_class = torch.full((bs, num_queries), num_classes, dtype=torch.int64,
                                  device=logits.device)
        target_class[batch_idx, query_idx] = tgt_labels
        onehot = F.one_hot(target_class, num_classes + 1)[..., :num_classes].float()
        prob = logits.sigmoid()
        if self.use_vfl:
            score = torch.zeros((bs, num_queries), device=logits.device)
            score[batch_idx, query_idx] = ious
            target = score.unsqueeze(-1) * onehot
            weight = self.alpha * prob.pow(self.gamma) * (1 - onehot) + target
        else:
            target = onehot
            p_t = prob * target + (1 - prob) * (1 - target)
            weight = (1 - p_t).pow(self.gamma) * (self.alpha * target
                                                  + (1 - self.alpha) * (1 - target))
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight
        return loss.mean(1).sum() * num_queries / num_gts

    @staticmethod
    def _num_gts(targets, device):
        num = torch.tensor(float(sum(len(t["labels"]) for t in targets)), device=device)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(num)
            num = num / dist.get_world_size()
        return num.clamp(min=1.0)

    @staticmethod
    def _dn_indices(targets, dn_meta, device):
        """Fixed denoising matches: (positive query indices, GT index tiled num_group times)."""
        positive_idx, num_group = dn_meta["dn_positive_idx"], dn_meta["dn_num_group"]
        if len(positive_idx) != len(targets):
            raise ValueError(f"DETRLoss: dn_positive_idx has {len(positive_idx)} images, "
                             f"targets {len(targets)}")
        indices = []
        for t, pos in zip(targets, positive_idx):
            gt_idx = torch.arange(len(t["labels"]), device=device).tile(num_group)
            if len(pos) != len(gt_idx):
                raise ValueError("DETRLoss: dn_positive_idx does not match the targets' GT counts")
            indices.append((pos.to(device=device, dtype=torch.int64), gt_idx))
        return indices


RTDETRCriterion = DETRLoss

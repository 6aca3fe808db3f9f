"""Contrastive denoising (CDN) query groups of RT-DETR / DINO, built for the decoder in training.

Same construction as PaddleDetection's ``get_contrastive_denoising_training_group``
(ppdet/modeling/transformers/utils.py) and HF's function of the same name. Differences, all
deliberate:

- Random draws follow HF's order and shapes, so that with the same torch RNG state both give the
  same groups: ``rand(B, N)`` (label-noise mask), ``randint(0, C, (B, N))`` (new labels, drawn for
  every slot and used where the mask hits a real GT), ``randint(0, 2, (B, N, 4))`` (box noise sign),
  ``rand(B, N, 4)`` (box noise magnitude). Paddle draws ``rand(B * N)`` and then new labels only for
  the chosen slots, so its stream (and its RNG) differs; the distribution of the groups is the same.
- ``attn_mask`` is bool with True = blocked (``nn.MultiheadAttention`` convention; for
  ``F.scaled_dot_product_attention`` pass ``~attn_mask``). Paddle returns True = may attend
  (it builds the blocked mask and inverts it); HF returns an additive float mask (-inf = blocked).
- ``class_embed`` (an ``nn.Embedding`` or its weight) may be Paddle's table of ``num_classes``
  rows (a zero row is appended for the padding label ``num_classes``, as Paddle does) or HF's
  ``num_classes + 1`` rows (the last row, its ``padding_idx``, is the padding embedding).
- ``input_query_bbox`` is always in logit space; Paddle and HF apply the inverse sigmoid only
  inside their ``box_noise_scale > 0`` branch (so with no box noise they would hand plain boxes to
  a decoder that expects logits).
"""
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_convert

from ..assigners.hungarian_matcher import target_labels

__all__ = ["get_contrastive_denoising_training_group", "inverse_sigmoid"]


def inverse_sigmoid(x, eps=1e-5):
    """logit(x) with x clipped to [0, 1] and both odds terms to >= eps (Paddle develop / HF)."""
    x = x.clamp(min=0.0, max=1.0)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def _embed_labels(class_embed, labels, num_classes):
    is_module = isinstance(class_embed, nn.Embedding)
    weight = class_embed.weight if is_module else class_embed
    rows = weight.shape[0]
    if rows == num_classes + 1:  # the module keeps its padding_idx (no gradient to that row)
        return class_embed(labels) if is_module else F.embedding(labels, weight)
    if rows == num_classes:
        return F.embedding(labels, torch.cat([weight, weight.new_zeros(1, weight.shape[1])]))
    raise ValueError(f"denoising class_embed has {rows} rows; expected num_classes ({num_classes}) "
                     f"or num_classes + 1")


def get_contrastive_denoising_training_group(targets, num_classes, num_queries, class_embed,
                                             num_denoising=100, label_noise_ratio=0.5,
                                             box_noise_scale=1.0, generator=None):
    """Noised positive / negative copies of the GT boxes, fed to the decoder as extra queries.

    Every group holds ``2 * G`` slots per image, ``G = max_gt`` positives (GT boxes moved by less
    than half their size) then ``G`` negatives (moved by one to two half sizes); there are
    ``num_group = max(num_denoising // G, 1)`` groups, ``N = 2 * G * num_group`` queries in all.
    Labels of real GT slots are replaced by a random class with probability
    ``label_noise_ratio / 2``; padding slots carry label ``num_classes`` (a zero embedding).

    Args:
        targets (list[dict]): per image ``labels`` (n,) int64 (or HF's ``class_labels``) and
            ``boxes`` (n, 4) normalised cxcywh.
        num_classes (int), num_queries (int): number of classes and of matching queries.
        class_embed (nn.Embedding | Tensor): the embedding or its (rows, D) weight, with
            ``num_classes`` or ``num_classes + 1`` rows (see module doc).
        num_denoising (int): target number of denoising queries (<= 0 disables denoising).
        label_noise_ratio (float), box_noise_scale (float): noise strengths (0 disables each).
        generator (torch.Generator | None): source of the random draws (default: torch's global
            RNG of the device).

    Returns:
        ``(input_query_class (B, N, D), input_query_bbox (B, N, 4) in logit space (inverse
        sigmoid of noised cxcywh), attn_mask (N + Q, N + Q) bool True = blocked, dn_meta)`` with
        ``dn_meta = {"dn_positive_idx": tuple of (n_i * num_group,) int64 query indices of the
        positive slots of each image, "dn_num_group": num_group, "dn_num_split": [N, Q]}``;
        ``(None, None, None, None)`` when denoising is off or the batch holds no GT.
    """
    if num_denoising <= 0 or len(targets) == 0:
        return None, None, None, None
    num_gts = [len(target_labels(t)) for t in targets]
    max_gt = max(num_gts)
    if max_gt == 0:
        return None, None, None, None
    device = (class_embed.weight if isinstance(class_embed, nn.Embedding) else class_embed).device
    num_group = max(num_denoising // max_gt, 1)
    bs = len(targets)

    labels = torch.full((bs, max_gt), num_classes, dtype=torch.int32, device=device)
    boxes = torch.zeros((bs, max_gt, 4), device=device)
    pad_gt_mask = torch.zeros((bs, max_gt), dtype=torch.bool, device=device)
    for i, (t, n) in enumerate(zip(targets, num_gts)):
        if n > 0:
            labels[i, :n] = target_labels(t).to(device=device, dtype=torch.int32)
            boxes[i, :n] = t["boxes"].to(device=device, dtype=torch.float32)
            pad_gt_mask[i, :n] = True
    labels = labels.tile(1, 2 * num_group)
    boxes = boxes.tile(1, 2 * num_group, 1)
    pad_gt_mask = pad_gt_mask.tile(1, 2 * num_group)
    negative = torch.zeros((bs, 2 * max_gt, 1), device=device)
    negative[:, max_gt:] = 1.0
    negative = negative.tile(1, num_group, 1)
    positive = (1.0 - negative.squeeze(-1)) * pad_gt_mask
    dn_positive_idx = torch.nonzero(positive)[:, 1].split([n * num_group for n in num_gts])
    num_dn = 2 * max_gt * num_group

    if label_noise_ratio > 0:
        hit = torch.rand(labels.shape, generator=generator, device=device) < label_noise_ratio * 0.5
        new_labels = torch.randint(0, num_classes, labels.shape, generator=generator,
                                   dtype=labels.dtype, device=device)
        labels = torch.where(hit & pad_gt_mask, new_labels, labels)

    if box_noise_scale > 0:
        corners = box_convert(boxes, "cxcywh", "xyxy")
        diff = torch.tile(boxes[..., 2:] * 0.5, (1, 1, 2)) * box_noise_scale
        sign = torch.randint(0, 2, boxes.shape, generator=generator, dtype=boxes.dtype,
                             device=device) * 2.0 - 1.0
        part = torch.rand(boxes.shape, generator=generator, device=device)
        part = (part + 1.0) * negative + part * (1.0 - negative)
        corners = (corners + part * sign * diff).clamp(min=0.0, max=1.0)
        boxes = box_convert(corners, "xyxy", "cxcywh")
    input_query_bbox = inverse_sigmoid(boxes)
    input_query_class = _embed_labels(class_embed, labels, num_classes)

    size = num_dn + num_queries
    attn_mask = torch.zeros((size, size), dtype=torch.bool, device=device)
    attn_mask[num_dn:, :num_dn] = True  # matching queries never see the denoising ones
    for g in range(num_group):  # a denoising group sees itself and the matching queries only
        start, end = 2 * max_gt * g, 2 * max_gt * (g + 1)
        attn_mask[start:end, :start] = True
        attn_mask[start:end, end:num_dn] = True
    dn_meta = {"dn_positive_idx": dn_positive_idx, "dn_num_group": num_group,
               "dn_num_split": [num_dn, num_queries]}
    return input_query_class, input_query_bbox, attn_mask, dn_meta

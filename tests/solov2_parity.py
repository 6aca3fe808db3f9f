"""Shared pieces of the SOLOv2 parity tests against ppdet 2.6.0 (head and end to end):
tolerances, Paddle's per-level outputs in our flat layout, the point-NMS near-tie allowance and
the instance comparison."""
import numpy as np
import torch

OUTPUT_TOL = 1e-4
TIE_TOL = 1e-5  # point NMS keeps a cell equal to its 2x2 window's max: near-ties may flip
MAX_TIE_FLIPS = 10
SCORE_TOL = 1e-4
MIN_MASK_IOU = 0.99


def flat_paddle_outputs(cates, kernels):
    """Paddle's per-level eval outputs, ``cates`` [(N, S, S, C)] and ``kernels`` [(N, E, S, S)],
    in our flat layout (N, A, C), (N, A, E)."""
    cate = np.concatenate([c.reshape(c.shape[0], -1, c.shape[-1]) for c in cates], axis=1)
    kernel = np.concatenate([k.reshape(*k.shape[:2], -1).transpose(0, 2, 1) for k in kernels], 1)
    return cate, kernel


def point_nms_near_ties(logits):
    """Bool (N, S*S, C) of the cells whose 2x2 point-NMS window (the cell and its upper, left
    and upper-left neighbours) holds another score within ``TIE_TOL`` of theirs: the cells whose
    keep decision float rounding may flip."""
    heat = logits.sigmoid()
    padded = torch.nn.functional.pad(heat, (1, 0, 1, 0), value=-1.0)
    others = torch.stack([padded[..., :-1, :-1], padded[..., :-1, 1:], padded[..., 1:, :-1]])
    near = ((others - heat).abs() <= TIE_TOL).any(dim=0)
    return near.flatten(2).transpose(1, 2)


def score_mismatches(ours, theirs, logits):
    """Point-NMS'ed scores (N, A, C) -> (number differing by more than ``OUTPUT_TOL``, number of
    those at no near-tie of the per-level ``logits`` [(N, C, S, S)])."""
    differ = np.abs(ours - theirs) > OUTPUT_TOL
    ties = torch.cat([point_nms_near_ties(x) for x in logits], dim=1).numpy()
    return int(differ.sum()), int((differ & ~ties).sum())


def assert_scores_match(ours, theirs, logits):
    """Point-NMS'ed scores equal within ``OUTPUT_TOL`` except at a few near-ties."""
    differ, off_tie = score_mismatches(ours, theirs, logits)
    assert differ <= MAX_TIE_FLIPS and not off_tie, (
        f"{differ} scores differ, {off_tie} of them at no near-tie")


def without_fake(labels, scores, segm):
    """Paddle's instances without its appended candidate (kernel of ones, score 0, last when
    present)."""
    fake = scores == 0
    assert fake.sum() <= 1 and not fake[:-1].any()
    return labels[~fake], scores[~fake], segm[~fake]


def mask_ious(ours, theirs):
    """Per-instance IoU of bool masks ``ours`` (K, H, W) and Paddle's ``theirs`` (K, H, W)."""
    theirs = theirs > 0
    inter = (ours & theirs).sum((1, 2))
    union = (ours | theirs).sum((1, 2))
    return inter / np.maximum(union, 1)


def offset_magnitudes(model, run):
    """Mean |offset| (pixels) of every DCN (a module with a ``conv_offset``) in ``model`` while
    ``run()`` runs it, one value per DCN call."""
    values = []
    hooks = [m.conv_offset.register_forward_hook(
        lambda mod, inp, out: values.append(out[:, :2 * mod.weight.shape[-1] ** 2].abs().mean()))
        for m in model.modules() if hasattr(m, "conv_offset")]
    with torch.no_grad():
        run()
    for hook in hooks:
        hook.remove()
    return torch.stack(values) if values else torch.zeros(0)

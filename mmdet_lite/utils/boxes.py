"""Box utilities shared by every model family (the project's one box-utility module).

Boxes are ``x1 y1 x2 y2`` unless a name says otherwise. Area, IoU and GIoU come from
``torchvision.ops`` (``box_area``, ``box_iou``, ``generalized_box_iou``); only what torchvision
lacks lives here.
"""
import torch


def anchor_points(feat_sizes, strides, cell_offset=0.5, dtype=torch.float32, device=None):
    """Centre points of every cell of every level, in feature-cell units, plus each point's stride.

    ``feat_sizes``: ``[(h, w), ...]`` per level; ``strides``: one int per level. Points are
    ``(x + cell_offset, y + cell_offset)`` in row-major order over each level, levels concatenated.
    Returns ``points (A, 2)`` (x, y) and ``stride_tensor (A, 1)``; multiply the points by the
    strides for input-pixel coordinates.
    """
    points, stride_list = [], []
    for (h, w), stride in zip(feat_sizes, strides):
        shift_x = torch.arange(w, device=device, dtype=dtype) + cell_offset
        shift_y = torch.arange(h, device=device, dtype=dtype) + cell_offset
        yy, xx = torch.meshgrid(shift_y, shift_x, indexing="ij")
        points.append(torch.stack([xx, yy], dim=-1).reshape(-1, 2))
        stride_list.append(torch.full((h * w, 1), float(stride), dtype=dtype, device=device))
    return torch.cat(points), torch.cat(stride_list)


def distance2bbox(points, distance):
    """Decode ``(left, top, right, bottom)`` distances around points into ``x1 y1 x2 y2`` boxes.

    ``points (..., 2)`` and ``distance (..., 4)`` broadcast against each other (e.g. points (A, 2)
    with distances (N, A, 4)); returns ``(..., 4)``.
    """
    lt, rb = distance.split(2, dim=-1)
    return torch.cat([points - lt, points + rb], dim=-1)


def bbox2distance(points, bbox, reg_max, eps=0.01):
    """Encode ``x1 y1 x2 y2`` boxes as ``(left, top, right, bottom)`` distances from points.

    ``points (..., 2)``, ``bbox (..., 4)``; distances are clipped to ``[0, reg_max - eps]`` so they
    index a DFL distribution of ``reg_max + 1`` bins. Returns ``(..., 4)``.
    """
    lt = points - bbox[..., :2]
    rb = bbox[..., 2:] - points
    return torch.cat([lt, rb], dim=-1).clamp(0, reg_max - eps)

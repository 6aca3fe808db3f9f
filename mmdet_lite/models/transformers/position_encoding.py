"""Fixed position encodings and anchors of RT-DETR, computed for the actual feature size.

PaddleDetection caches both for ``eval_size``; computing them per call gives the same tensors at
that size and keeps other sizes (and dynamic ONNX shapes) working. Sizes are Python ints in eager
mode and 0-dim tensors while tracing (``x.shape``); they are never passed through ``int()`` or
``float()``, so that a traced graph computes them from its input's shape.
"""
import torch


def size_tensor(sizes, device=None):
    """Feature sizes (ints, or the 0-dim tensors of a traced ``x.shape``) -> float32 (len,)."""
    if not any(torch.is_tensor(s) for s in sizes):
        return torch.tensor([float(s) for s in sizes], dtype=torch.float32, device=device)
    return torch.stack([s.to(device, torch.float32) if torch.is_tensor(s)
                        else torch.tensor(float(s), device=device) for s in sizes])


def sincos_position_embedding_2d(width, height, embed_dim=256, temperature=10000.0, device=None,
                                 dtype=torch.float32):
    """Paddle's ``HybridEncoder.build_2d_sincos_position_embedding(w, h)``: (1, H*W, embed_dim).

    Channels are ``[sin(a), cos(a), sin(b), cos(b)]``, each ``embed_dim / 4`` wide, with ``a, b``
    the ``(w, h)`` meshgrid in "ij" order flattened, exactly as Paddle (and the original RT-DETR)
    compute it in float32: on square maps ``a`` is the row and ``b`` the column of each flattened
    position; non-square maps keep Paddle's flattening.
    """
    if embed_dim % 4 != 0:
        raise ValueError(f"embed_dim must be divisible by 4 for the 2-D sin-cos embedding, "
                         f"got {embed_dim}")
    grid_w = torch.arange(width, dtype=torch.float32, device=device)
    grid_h = torch.arange(height, dtype=torch.float32, device=device)
    grid_w, grid_h = torch.meshgrid(grid_w, grid_h, indexing="ij")
    pos_dim = embed_dim // 4
    omega = torch.arange(pos_dim, dtype=torch.float32, device=device) / pos_dim
    omega = 1.0 / temperature ** omega
    out_w = grid_w.flatten()[:, None] * omega[None]
    out_h = grid_h.flatten()[:, None] * omega[None]
    embed = torch.cat([out_w.sin(), out_w.cos(), out_h.sin(), out_h.cos()], dim=1)
    return embed[None].to(dtype)


def generate_anchors(spatial_shapes, grid_size=0.05, eps=1e-2, device=None, dtype=torch.float32):
    """RT-DETR's proposal anchors in inverse-sigmoid space, as Paddle's ``_generate_anchors``.

    ``spatial_shapes``: ``[(h, w), ...]`` per level. Level ``l`` has one anchor per cell, centre
    ``((x + 0.5), (y + 0.5)) / (h, w)`` (Paddle divides x by h and y by w; identical on the square
    inputs RT-DETR runs at) and size ``grid_size * 2**l``. Returns ``anchors (1, A, 4)`` as
    ``log(a / (1 - a))`` with ``inf`` where the anchor is invalid, and ``valid_mask (1, A, 1)`` bool
    (every coordinate strictly inside ``(eps, 1 - eps)``).
    """
    anchors = []
    for level, (h, w) in enumerate(spatial_shapes):
        grid_y, grid_x = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=device),
                                        torch.arange(w, dtype=torch.float32, device=device),
                                        indexing="ij")
        grid_xy = torch.stack([grid_x, grid_y], dim=-1)
        grid_xy = (grid_xy[None] + 0.5) / size_tensor((h, w), device)
        wh = torch.ones_like(grid_xy) * (grid_size * 2.0 ** level)
        anchors.append(torch.cat([grid_xy, wh], dim=-1).reshape(1, -1, 4))
    anchors = torch.cat(anchors, dim=1)
    valid_mask = ((anchors > eps) & (anchors < 1 - eps)).all(-1, keepdim=True)
    anchors = torch.log(anchors / (1 - anchors))
    anchors = torch.where(valid_mask, anchors, torch.full_like(anchors, float("inf")))
    return anchors.to(dtype), valid_mask

"""Multi-scale deformable attention (Deformable DETR) with RT-DETR's box-relative sampling."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet_lite.models.transformers.position_encoding import size_tensor


def multi_scale_deformable_attn(value, spatial_shapes, sampling_locations, attention_weights):
    """Bilinear sampling of every level at the given locations, weighted and summed.

    ``value (B, S, M, D)`` with ``S = sum(h * w)`` (levels concatenated, each flattened
    row-major), ``spatial_shapes``: ``[(h, w), ...]``, ``sampling_locations (B, Q, M, L, P, 2)`` as
    ``(x, y)`` in [0, 1] (map edges at 0 and 1), ``attention_weights (B, Q, M, L, P)``. Sampling is
    ``grid_sample`` with ``align_corners=False`` and zero padding, as in Paddle's and HF's
    framework-only paths. Returns ``(B, Q, M * D)``.
    """
    batch, _, num_heads, head_dim = value.shape
    _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
    value_list = value.split([h * w for h, w in spatial_shapes], dim=1)
    sampling_grids = 2 * sampling_locations - 1
    sampled = []
    for level, (h, w) in enumerate(spatial_shapes):
        # (B, h*w, M, D) -> (B*M, D, h, w)
        value_l = value_list[level].flatten(2).transpose(1, 2)
        value_l = value_l.reshape(batch * num_heads, head_dim, h, w)
        # (B, Q, M, P, 2) -> (B*M, Q, P, 2)
        grid_l = sampling_grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(value_l, grid_l, mode="bilinear", padding_mode="zeros",
                                     align_corners=False))
    # (B, Q, M, L, P) -> (B*M, 1, Q, L*P)
    weights = attention_weights.transpose(1, 2).reshape(batch * num_heads, 1, num_queries,
                                                        num_levels * num_points)
    output = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1)
    return output.reshape(batch, num_heads * head_dim, num_queries).transpose(1, 2)


class MSDeformableAttention(nn.Module):
    """Paddle's ``PPMSDeformableAttention``: queries (B, Q, C) attend to multi-level memory
    (B, S, C).

    Reference points are ``(B, Q, L, 2)`` (x, y) or ``(B, Q, L, 4)`` boxes (cx, cy, w, h), all in
    [0, 1]; with boxes the offsets are scaled by ``w, h * 0.5 / num_points`` (RT-DETR). Returns
    ``(B, Q, C)``. Submodule names are Paddle's.
    """

    def __init__(self, embed_dim=256, num_heads=8, num_levels=4, num_points=4):
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points = num_points
        self.head_dim = embed_dim // num_heads
        total_points = num_heads * num_levels * num_points
        self.sampling_offsets = nn.Linear(embed_dim, total_points * 2)
        self.attention_weights = nn.Linear(embed_dim, total_points)
        self.value_proj = nn.Linear(embed_dim, embed_dim)
        self.output_proj = nn.Linear(embed_dim, embed_dim)
        self.reset_parameters()

    def reset_parameters(self):
        """Deformable DETR's init: offsets start on a ring of directions, one radius per point."""
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True).values
        grid = grid.reshape(self.num_heads, 1, 1, 2).repeat(1, self.num_levels, self.num_points, 1)
        grid = grid * torch.arange(1, self.num_points + 1, dtype=torch.float32).reshape(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self, query, reference_points, value, spatial_shapes, value_mask=None):
        batch, num_queries = query.shape[:2]
        value = self.value_proj(value)
        if value_mask is not None:
            value = value * value_mask.to(value.dtype).unsqueeze(-1)
        value = value.reshape(batch, value.shape[1], self.num_heads, self.head_dim)
        shape = (batch, num_queries, self.num_heads, self.num_levels, self.num_points)
        offsets = self.sampling_offsets(query).reshape(*shape, 2)
        weights = self.attention_weights(query).reshape(batch, num_queries, self.num_heads, -1)
        weights = weights.softmax(-1).reshape(shape)
        if reference_points.shape[-1] == 2:
            normalizer = size_tensor([s for h, w in spatial_shapes for s in (w, h)],
                                     query.device).reshape(-1, 2).to(query.dtype)
            locations = (reference_points[:, :, None, :, None, :]
                         + offsets / normalizer[None, None, None, :, None, :])
        elif reference_points.shape[-1] == 4:
            locations = (reference_points[:, :, None, :, None, :2] + offsets / self.num_points
                         * reference_points[:, :, None, :, None, 2:] * 0.5)
        else:
            raise ValueError("reference_points must end in 2 or 4 values, "
                             f"got {reference_points.shape[-1]}")
        output = multi_scale_deformable_attn(value, spatial_shapes, locations, weights)
        return self.output_proj(output)

"""Building blocks of the SOLOv2 heads: conv + GroupNorm towers, CoordConv channels, DropBlock.

Paddle's ``ConvNormLayer(norm_type="gn")`` as the SOLOv2 heads use it: a k x k conv without bias
(or, with ``use_dcn``, a DCNv2 with bias whose biases learn at 2x LR without weight decay) and a
32-group GroupNorm whose affine has no weight decay (``norm_decay=0``).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet_lite.models.layers import DeformableConvV2

__all__ = ["ConvGN", "DropBlock", "coord_features", "deformable_conv"]

HEAD_DCN_BIAS_LR_MULT = 2.0  # ConvNormLayer(dcn_lr_scale=2.0, dcn_regularizer=L2Decay(0.0))


def deformable_conv(in_channels, out_channels, kernel_size):
    """The heads' DCNv2 (Paddle ``DeformableConvV2`` of a ``ConvNormLayer(use_dcn=True)``):
    stride 1, ``(k - 1) // 2`` padding, with bias; the one place the heads build a DCN."""
    return DeformableConvV2(in_channels, out_channels, kernel_size, bias=True,
                            bias_lr_mult=HEAD_DCN_BIAS_LR_MULT, bias_decay=False)


class ConvGN(nn.Module):
    """k x k conv (stride 1, same padding) -> GroupNorm(``num_groups``) -> optional ReLU:
    (N, Cin, H, W) -> (N, Cout, H, W).

    ``conv`` is an ``nn.Conv2d`` without bias, or with ``use_dcn`` a DCNv2 with bias
    (``deformable_conv``); ``norm`` the GroupNorm (eps 1e-5, Paddle's), whose affine has no
    weight decay (``no_weight_decay()``). Weights start as Paddle's: Normal(0, 0.01).
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, use_dcn=False, relu=True,
                 num_groups=32):
        super().__init__()
        if use_dcn:
            self.conv = deformable_conv(in_channels, out_channels, kernel_size)
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size,
                                  padding=(kernel_size - 1) // 2, bias=False)
        nn.init.normal_(self.conv.weight, std=0.01)
        self.norm = nn.GroupNorm(num_groups, out_channels, eps=1e-5)
        self.relu = relu

    def no_weight_decay(self):
        return ["norm.weight", "norm.bias"]

    def forward(self, x):
        x = self.norm(self.conv(x))
        return F.relu(x) if self.relu else x


def coord_features(x):
    """CoordConv channels for (N, C, H, W) features: (N, 2, H, W), x then y, each ``linspace(-1,
    1)`` over its axis (Paddle's meshgrid of SOLOv2), in ``x``'s dtype and device."""
    n, _, h, w = x.shape
    xs = torch.linspace(-1.0, 1.0, w, dtype=torch.float32, device=x.device)
    ys = torch.linspace(-1.0, 1.0, h, dtype=torch.float32, device=x.device)
    coords = torch.stack([xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w)])
    return coords.to(x.dtype).unsqueeze(0).expand(n, 2, h, w)


class DropBlock(nn.Module):
    """DropBlock (Paddle's ``DropBlock``, training only): (N, C, H, W) -> (N, C, H, W).

    Seeds drop with probability ``gamma = (1 - keep_prob) / block_size^2 * prod(s / (s -
    block_size + 1))`` per element; each seed zeroes the ``block_size`` square around it (a
    stride-1 max-pool of the seeds); the kept elements are rescaled by ``numel / kept``. In eval
    mode, or with ``keep_prob == 1``, the input passes unchanged.
    """

    def __init__(self, block_size=3, keep_prob=0.9):
        super().__init__()
        self.block_size = block_size
        self.keep_prob = keep_prob

    def forward(self, x):
        if not self.training or self.keep_prob == 1:
            return x
        gamma = (1.0 - self.keep_prob) / (self.block_size ** 2)
        for size in x.shape[2:]:
            gamma *= size / (size - self.block_size + 1)
        seeds = (torch.rand_like(x) < gamma).to(x.dtype)
        dropped = F.max_pool2d(seeds, self.block_size, stride=1, padding=self.block_size // 2)
        keep = 1.0 - dropped
        return x * keep * (keep.numel() / keep.sum())

    def extra_repr(self):
        return f"block_size={self.block_size}, keep_prob={self.keep_prob}"

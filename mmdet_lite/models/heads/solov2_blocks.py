"""Building blocks of the SOLOv2 heads: conv + GroupNorm towers, CoordConv channels, DropBlock.

Paddle's ``ConvNormLayer(norm_type="gn")`` as the SOLOv2 heads use it: a k x k conv without bias
(or, with ``use_dcn``, a DCNv2 with bias whose biases learn at 2x LR without weight decay) and a
32-group GroupNorm whose affine has no weight decay (``norm_decay=0``).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import deform_conv2d

__all__ = ["ConvGN", "DropBlock", "coord_features", "deformable_conv"]

HEAD_DCN_BIAS_LR_MULT = 2.0  # ConvNormLayer(dcn_lr_scale=2.0, dcn_regularizer=L2Decay(0.0))


class _DeformableConvV2(nn.Module):
    """Modulated deformable conv (DCNv2) with bias: (N, Cin, H, W) -> (N, Cout, H, W), stride 1.

    Stand-in until ``mmdet_lite.models.layers.DeformableConvV2`` is shared: the same state-dict
    names (``conv_offset`` predicting 3 k^2 channels, the first 2 k^2 the (dy, dx) offsets per
    kernel position, the last k^2 the mask logits; ``weight``, ``bias``) and the same
    ``param_lr_mults()`` / ``no_weight_decay()`` (biases at 2x LR, not decayed).
    """

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.kernel_points = kernel_size * kernel_size
        self.padding = (kernel_size - 1) // 2
        self.conv_offset = nn.Conv2d(in_channels, 3 * self.kernel_points, kernel_size,
                                     padding=self.padding)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size,
                                               kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def param_lr_mults(self):
        return {"conv_offset.bias": HEAD_DCN_BIAS_LR_MULT, "bias": HEAD_DCN_BIAS_LR_MULT}

    def no_weight_decay(self):
        return ["conv_offset.bias", "bias"]

    def forward(self, x):
        offset, mask = self.conv_offset(x).split([2 * self.kernel_points, self.kernel_points], 1)
        return deform_conv2d(x, offset, self.weight, self.bias, padding=self.padding,
                             mask=mask.sigmoid())


def deformable_conv(in_channels, out_channels, kernel_size):
    """The heads' DCNv2 (Paddle ``DeformableConvV2`` of a ``ConvNormLayer(use_dcn=True)``):
    stride 1, ``(k - 1) // 2`` padding, with bias; the one place the heads build a DCN."""
    return _DeformableConvV2(in_channels, out_channels, kernel_size)


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

"""Building blocks shared by every model family (module names are state-dict keys: keep them)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import deform_conv2d

_ACTIVATIONS = {
    None: nn.Identity,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hardswish": nn.Hardswish,
    "hard_swish": nn.Hardswish,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
}


def get_activation(name):
    """Return a fresh activation module for a Paddle-style name (``None`` gives Identity)."""
    if name not in _ACTIVATIONS:
        known = sorted(k for k in _ACTIVATIONS if k)
        raise ValueError(f"unknown activation {name!r}; choose from {known}")
    return _ACTIVATIONS[name]()


class DeformableConvV2(nn.Module):
    """Modulated deformable convolution (DCNv2), Paddle's ``DeformableConvV2``:
    (N, Cin, H, W) -> (N, Cout, H / stride, W / stride).

    ``conv_offset`` (a k x k conv of the same stride, zero at start as in Paddle: no offset, mask
    0.5) predicts 3 k^2 channels, split as Paddle splits them: the first 2 k^2 are the offsets,
    one (dy, dx) pair per kernel position in row-major order, the last k^2 the mask logits
    (sigmoid). That is ``torchvision.ops.deform_conv2d``'s layout (one offset group). ``weight``
    is (Cout, Cin / groups, k, k); ``bias`` (Cout,) only when ``bias``.

    Per-parameter settings as Paddle's ``ParamAttr``: ``param_lr_mults()`` gives ``conv_offset``'s
    weight 1 and both biases ``bias_lr_mult``; ``no_weight_decay()`` lists both biases unless
    ``bias_decay`` (the heads' DCN: 2 and no decay; the backbone's: 1, decayed). ``weight``'s
    multiplier is the owner's (a ResNet stage's).
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, dilation=1, groups=1,
                 bias=False, bias_lr_mult=1.0, bias_decay=True):
        super().__init__()
        self.in_channels, self.groups = in_channels, groups
        self.stride, self.dilation = stride, dilation
        self.padding = (kernel_size - 1) // 2 * dilation
        self.kernel_points = kernel_size * kernel_size
        self.bias_lr_mult, self.bias_decay = float(bias_lr_mult), bias_decay
        self.conv_offset = nn.Conv2d(in_channels, 3 * self.kernel_points, kernel_size, stride,
                                     (kernel_size - 1) // 2)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kernel_size,
                                               kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def _bias_names(self):
        return ["conv_offset.bias"] + (["bias"] if self.bias is not None else [])

    def param_lr_mults(self):
        """``{parameter name: learning-rate multiplier}`` for the offset conv and the biases."""
        return {"conv_offset.weight": 1.0, **{n: self.bias_lr_mult for n in self._bias_names()}}

    def no_weight_decay(self):
        """Names of the parameters without L2 decay (the biases unless ``bias_decay``)."""
        return [] if self.bias_decay else self._bias_names()

    def forward(self, x):
        offset, mask = self.conv_offset(x).split([2 * self.kernel_points, self.kernel_points], 1)
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding,
                             self.dilation, mask.sigmoid())

    def extra_repr(self):
        return (f"{self.in_channels}, {self.weight.shape[0]}, kernel_size={self.weight.shape[-1]}, "
                f"stride={self.stride}, dilation={self.dilation}, groups={self.groups}")


class ConvBN(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> activation: (N, Cin, H, W) -> (N, Cout, H/s, W/s).

    ``padding`` defaults to ``(kernel_size - 1) // 2``. BatchNorm uses Paddle's defaults
    (eps 1e-5, momentum 0.9 in Paddle's convention, i.e. 0.1 in PyTorch's). ``dcn_v2``: the conv
    is a ``DeformableConvV2`` (Paddle's ``ConvNormLayer(dcn_v2=True)`` of the ResNet).
    """

    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, groups=1, padding=None,
                 act=None, bias=False, bn_eps=1e-5, dcn_v2=False):
        super().__init__()
        if dcn_v2:
            if padding is not None:
                raise ValueError("ConvBN(dcn_v2=True) pads by (kernel_size - 1) // 2 only")
            self.conv = DeformableConvV2(in_channels, out_channels, kernel_size, stride,
                                         groups=groups, bias=bias)
        else:
            if padding is None:
                padding = (kernel_size - 1) // 2
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                  groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=0.1)
        self.act = get_activation(act)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class PaddleHardsigmoid(nn.Module):
    """Paddle's ``hardsigmoid``: ``clip(slope * x + offset, 0, 1)`` with Paddle's default constants.

    Paddle's slope is the literal 0.1666667, not exactly 1/6 as in ``nn.Hardsigmoid``.
    """

    def __init__(self, slope=0.1666667, offset=0.5):
        super().__init__()
        self.slope = slope
        self.offset = offset

    def forward(self, x):
        return torch.clamp(x * self.slope + self.offset, 0.0, 1.0)


class SEModule(nn.Module):
    """Squeeze-and-excitation of PP-LCNet: (N, C, H, W) -> (N, C, H, W).

    Global average pool -> 1x1 conv (C -> C/reduction) -> ReLU -> 1x1 conv (-> C) -> Paddle's
    hardsigmoid, which rescales the input channels.
    """

    def __init__(self, channels, reduction=4):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels // reduction, 1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels // reduction, channels, 1)
        self.hardsigmoid = PaddleHardsigmoid()

    def forward(self, x):
        weight = x.mean(dim=(2, 3), keepdim=True)
        weight = self.hardsigmoid(self.conv2(self.relu(self.conv1(weight))))
        return x * weight


class DepthwiseSeparable(nn.Module):
    """Depthwise k x k ConvBN -> optional SE -> pointwise 1x1 ConvBN.

    (N, Cin, H, W) -> (N, Cout, H/s, W/s).

    The one block behind Paddle's LCNet ``DepthwiseSeparable`` and csp_pan ``DPModule``:
    ``dw_conv`` maps ``in_channels`` to ``mid_channels`` (default ``in_channels``) with
    ``groups=mid_channels``; ``pw_conv`` maps ``mid_channels`` to ``out_channels``.
    ``act_out=False`` leaves the pointwise conv without activation
    (``DPModule(use_act_in_out=False)``).
    A ``DPModule(cin, cout, k, stride, act)`` is ``DepthwiseSeparable(cin, cout, k, stride, act,
    mid_channels=cout)``.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, act="hardswish",
                 use_se=False, mid_channels=None, act_out=True):
        super().__init__()
        mid_channels = in_channels if mid_channels is None else mid_channels
        self.dw_conv = ConvBN(in_channels, mid_channels, kernel_size, stride, groups=mid_channels,
                              act=act)
        self.se = SEModule(mid_channels) if use_se else nn.Identity()
        self.pw_conv = ConvBN(mid_channels, out_channels, 1, act=act if act_out else None)

    def forward(self, x):
        return self.pw_conv(self.se(self.dw_conv(x)))


class RepVggBlock(nn.Module):
    """act(BN(conv3x3(x)) + BN(conv1x1(x))): (N, C, H, W) -> (N, C, H, W).

    ``mmdet_lite.models.fuse.fuse_model`` merges both branches into ``conv1`` (``conv2`` None).
    """

    def __init__(self, in_channels, out_channels, act="relu"):
        super().__init__()
        self.conv1 = ConvBN(in_channels, out_channels, 3, padding=1)
        self.conv2 = ConvBN(in_channels, out_channels, 1, padding=0)
        self.act = get_activation(act)

    def forward(self, x):
        if self.conv2 is None:
            return self.act(self.conv1(x))
        return self.act(self.conv1(x) + self.conv2(x))


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters: (N, C, H, W) -> (N, C, H, W).

    Paddle's ``BatchNorm2D(use_global_stats=True)`` with non-trainable affine, i.e. its
    ``freeze_norm``: the running statistics are used in training too and nothing is updated.
    ``weight``, ``bias``, ``running_mean`` and ``running_var`` are buffers (no optimizer sees them)
    under BatchNorm2d's state-dict names, so checkpoints convert and load as for a BatchNorm2d; a
    BatchNorm2d's ``num_batches_tracked`` is ignored on load.
    """

    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=False, momentum=0.0, eps=self.eps)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}"

    @classmethod
    def convert(cls, module):
        """Replace every BatchNorm2d / SyncBatchNorm in ``module`` by a frozen copy; return it.

        Works in place on children; a bare BatchNorm module comes back as a new FrozenBatchNorm2d.
        """
        if isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm)):
            frozen = cls(module.num_features, module.eps)
            tensors = list(module.parameters()) + list(module.buffers())
            if tensors:
                frozen.to(tensors[0].device)
            with torch.no_grad():
                if module.affine:
                    frozen.weight.copy_(module.weight)
                    frozen.bias.copy_(module.bias)
                if module.track_running_stats:
                    frozen.running_mean.copy_(module.running_mean)
                    frozen.running_var.copy_(module.running_var)
            return frozen
        for name, child in module.named_children():
            new_child = cls.convert(child)
            if new_child is not child:
                setattr(module, name, new_child)
        return module

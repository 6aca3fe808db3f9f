"""Building blocks shared by every model family."""
import torch.nn as nn

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
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(k for k in _ACTIVATIONS if k)}")
    return _ACTIVATIONS[name]()


class ConvBN(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> activation: (N, Cin, H, W) -> (N, Cout, H/s, W/s).

    ``padding`` defaults to ``(kernel_size - 1) // 2``. BatchNorm uses Paddle's defaults
    (eps 1e-5, momentum 0.9 in Paddle's convention, i.e. 0.1 in PyTorch's).
    """

    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, groups=1, padding=None,
                 act=None, bias=False, bn_eps=1e-5):
        super().__init__()
        if padding is None:
            padding = (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                              groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=0.1)
        self.act = get_activation(act)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))

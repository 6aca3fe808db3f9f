"""Inference-time re-parameterisation (YOLOX's ``fuse_model``, RepVGG's deploy form).

``fuse_model(model)`` folds every ``ConvBN``'s BatchNorm (trainable or frozen; its conv a Conv2d
or a ``DeformableConvV2``), and every BatchNorm right after a Conv2d in an ``nn.Sequential``, into
the convolution, and merges each ``RepVggBlock``'s 3x3 and 1x1 branches into one 3x3 convolution.
The outputs equal the unfused model's up to float rounding (~1e-6 relative). The fused model is
for inference only: its state dict has other keys, and BatchNorm no longer trains.
"""
import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet_lite.models.layers import ConvBN, DeformableConvV2, FrozenBatchNorm2d, RepVggBlock

__all__ = ["fuse_conv_bn", "fuse_model"]


def _fold_bn_(fused, conv, bn):
    """Set ``fused``'s weight and bias to compute ``bn(conv(x))`` (``bn`` in its eval form)."""
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused.requires_grad_(False)


def fuse_conv_bn(conv, bn):
    """A Conv2d (with bias) computing ``bn(conv(x))`` for ``bn`` in its eval form."""
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                      conv.padding, conv.dilation, conv.groups, bias=True,
                      padding_mode=conv.padding_mode).to(conv.weight.device, conv.weight.dtype)
    return _fold_bn_(fused, conv, bn)


def _fuse_dcn_bn(dcn, bn):
    """A DeformableConvV2 (with bias, same offsets) computing ``bn(dcn(x))``: the modulated
    sampling is linear in the weight, so the BatchNorm folds into it as into a Conv2d."""
    fused = copy.deepcopy(dcn)
    if fused.bias is None:
        fused.bias = nn.Parameter(torch.zeros_like(bn.running_mean))
    return _fold_bn_(fused, dcn, bn)


def _fuse_conv_bn_module(module):
    if isinstance(module.bn, (nn.BatchNorm2d, FrozenBatchNorm2d)):
        fuse = _fuse_dcn_bn if isinstance(module.conv, DeformableConvV2) else fuse_conv_bn
        module.conv = fuse(module.conv, module.bn)
        module.bn = nn.Identity()


def _fuse_sequential(sequence):
    """Fold each BatchNorm that directly follows a Conv2d in ``sequence`` (in place)."""
    names = list(sequence._modules)
    for first, second in zip(names, names[1:]):
        conv, bn = sequence._modules[first], sequence._modules[second]
        if isinstance(conv, nn.Conv2d) and isinstance(bn, (nn.BatchNorm2d, FrozenBatchNorm2d)):
            sequence._modules[first] = fuse_conv_bn(conv, bn)
            sequence._modules[second] = nn.Identity()


def _merge_rep_vgg(block):
    """Replace the two fused branches of a ``RepVggBlock`` by one 3x3 convolution."""
    conv3, conv1 = block.conv1.conv, block.conv2.conv
    if conv1.kernel_size != (1, 1) or conv3.kernel_size != (3, 3) or conv1.stride != conv3.stride:
        return
    merged = nn.Conv2d(conv3.in_channels, conv3.out_channels, 3, conv3.stride, 1,
                       bias=True).to(conv3.weight.device, conv3.weight.dtype)
    with torch.no_grad():
        merged.weight.copy_(conv3.weight + F.pad(conv1.weight, [1, 1, 1, 1]))
        merged.bias.copy_(conv3.bias + conv1.bias)
    block.conv1.conv = merged.requires_grad_(False)
    block.conv2 = None


def fuse_model(model):
    """Fold BatchNorm into the convolutions of ``model`` (in place, eval mode); returns it."""
    model.eval()
    for module in list(model.modules()):
        if isinstance(module, ConvBN):
            _fuse_conv_bn_module(module)
        elif isinstance(module, nn.Sequential):
            _fuse_sequential(module)
    for module in list(model.modules()):
        if isinstance(module, RepVggBlock):
            _merge_rep_vgg(module)
    return model

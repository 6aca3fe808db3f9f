"""ONNX export of ``torchvision.ops.deform_conv2d`` as ONNX ``DeformConv`` (opset 19).

torchvision 0.29 registers no ONNX symbolic for ``torchvision::deform_conv2d``; ONNX's
``DeformConv`` has the same offset layout ((dy, dx) per kernel position, row-major, per offset
group) and modulation mask, and onnxruntime runs it on the CPU. ``register_deform_conv_onnx()``
adds the symbolic for the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``).
"""
import torch
from torch.onnx import symbolic_helper

__all__ = ["register_deform_conv_onnx", "DEFORM_CONV_OPSET"]

DEFORM_CONV_OPSET = 19
"""The first ONNX opset with ``DeformConv``."""


def _deform_conv2d(g, images, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w,
                   dilation_h, dilation_w, weight_groups, offset_groups, use_mask):
    def const(value):
        return symbolic_helper._get_const(value, "i", "deform_conv2d")

    inputs = [images, weight, offset, bias]
    if const(use_mask):
        inputs.append(mask)
    pad_h, pad_w = const(pad_h), const(pad_w)
    return g.op("DeformConv", *inputs, dilations_i=[const(dilation_h), const(dilation_w)],
                group_i=const(weight_groups), offset_group_i=const(offset_groups),
                kernel_shape_i=list(symbolic_helper._get_tensor_sizes(weight)[-2:]),
                pads_i=[pad_h, pad_w, pad_h, pad_w], strides_i=[const(stride_h), const(stride_w)])


def register_deform_conv_onnx():
    """Register the ``DeformConv`` symbolic of ``torchvision::deform_conv2d`` (idempotent)."""
    torch.onnx.register_custom_op_symbolic("torchvision::deform_conv2d", _deform_conv2d,
                                           DEFORM_CONV_OPSET)

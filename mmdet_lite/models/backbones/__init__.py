"""Backbones, and the ``backbone.name`` table that the detectors build them from."""
from mmdet_lite.utils.registry import Registry

from .cspnext import CSPNeXt
from .hgnet_v2 import PPHGNetV2
from .lcnet import LCNet
from .resnet import ResNet

__all__ = ["BACKBONES", "CSPNeXt", "LCNet", "PPHGNetV2", "ResNet"]

BACKBONES = Registry("backbone.name", {"ResNet": ResNet, "PPHGNetV2": PPHGNetV2, "LCNet": LCNet,
                                         "CSPNeXt": CSPNeXt})

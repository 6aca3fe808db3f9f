"""Experiments: plain-attribute configs with KEY VALUE overrides, loaded from ``exps/**.py``."""
from .base_exp import BaseExp
from .build import build_exp, get_exp
from .picodet_base import PicoDetExp
from .rtdetr_base import RTDETRExp
from .rtmdet_base import RTMDetExp
from .solov2_base import SOLOv2Exp

__all__ = ["BaseExp", "PicoDetExp", "RTDETRExp", "RTMDetExp", "SOLOv2Exp", "build_exp", "get_exp"]

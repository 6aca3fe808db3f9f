"""Experiments: plain-attribute configs with KEY VALUE overrides, loaded from ``exps/**.py``."""
from .base_exp import BaseExp
from .build import build_exp, get_exp
from .picodet_base import PicoDetExp
from .rtdetr_base import RTDETRExp
from .solov2_base import SOLOv2Exp

__all__ = ["BaseExp", "PicoDetExp", "RTDETRExp", "SOLOv2Exp", "build_exp", "get_exp"]

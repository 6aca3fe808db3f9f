"""Experiments: plain-attribute configs with KEY VALUE overrides, loaded from ``exps/**.py``."""
from .base_exp import BaseExp
from .build import get_exp
from .picodet_base import PicoDetExp
from .rtdetr_base import RTDETRExp

__all__ = ["BaseExp", "PicoDetExp", "RTDETRExp", "get_exp"]

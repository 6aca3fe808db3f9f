"""mmdet_lite: PaddleDetection's detectors in plain PyTorch, with YOLOX-style tools.

``from mmdet_lite import Predictor`` is the Python entry point (imported lazily, so that
``import mmdet_lite`` stays cheap).
"""
__version__ = "0.1.0"
__all__ = ["Predictor", "Result", "__version__"]


def __getattr__(name):
    if name in ("Predictor", "Result"):
        from mmdet_lite.core import predictor

        return getattr(predictor, name)
    raise AttributeError(f"module 'mmdet_lite' has no attribute {name!r}")

"""Make mmdet 3.3.0 importable on mmcv-lite, inside a reference process only (never in
site-packages): mmcv-lite has no compiled ``mmcv._ext``. RTMDet needs only its ``nms``, which this
stand-in computes with torchvision (mmcv's own Python wrapper around it runs unchanged); any other
compiled op raises. Import this module before ``mmdet`` in a reference script."""
import importlib.machinery
import sys
import types

import torchvision


def _compiled_op_missing(*args, **kwargs):
    raise RuntimeError("this mmcv op is compiled and mmcv-lite has none; the reference may only "
                       "use nms (tests/reference/mmdet_stubs.py)")


def _nms(bboxes, scores, iou_threshold, offset=0):
    """``mmcv._ext.nms``: kept indices, best first (offset 0: boxes as x1y1x2y2, no +1)."""
    if offset:
        raise RuntimeError("the torchvision nms stand-in supports offset 0 only")
    return torchvision.ops.nms(bboxes.float(), scores.float(), float(iou_threshold))


def _ext_attribute(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _compiled_op_missing


_ext = types.ModuleType("mmcv._ext")
_ext.__getattr__ = _ext_attribute
_ext.__file__ = __file__
# a spec without loader: mmengine's mmcv_full_available() then says False (no DCN ops)
_ext.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", None)
_ext.nms = _nms
sys.modules["mmcv._ext"] = _ext

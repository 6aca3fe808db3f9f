"""The one exp loader: ``get_exp`` (a file by path, or an exp name under ``exps/**``) and
``build_exp`` (that, then ``KEY VALUE`` overrides and ``--tsize``), used by every tool."""
import os
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from mmdet_lite.utils.errors import UserError

from .base_exp import BaseExp
from .exp_file import load_exp_module

__all__ = ["get_exp", "build_exp", "parse_tsize", "EXPS_DIR"]

EXPS_DIR = Path(__file__).resolve().parents[2] / "exps"


def _find_by_name(exp_name):
    stem = exp_name[:-3] if exp_name.endswith(".py") else exp_name
    found = sorted(EXPS_DIR.glob(f"**/{stem}.py"))
    if not found:
        raise UserError(f"no exp named '{stem}': no {stem}.py under {EXPS_DIR}")
    if len(found) > 1:
        raise UserError(f"exp name '{stem}' is ambiguous: {', '.join(map(str, found))}; "
                        "use -f PATH")
    return found[0]


def get_exp(exp_file: Union[str, os.PathLike, None] = None,
            exp_name: Optional[str] = None) -> BaseExp:
    """Instantiate ``class Exp`` of an exp file (path; ``exp_file`` wins) or of
    ``exps/**/<exp_name>.py``.

    ``exp.exp_name`` is the file's stem. A missing file is a ``UserError`` naming the path; an
    exception raised by the exp file itself surfaces unchanged.
    """
    if exp_file is None and exp_name is None:
        raise UserError("no exp given: pass an exp file (-f exps/picodet/<name>.py) or an exp name")
    if exp_file is not None:
        path = Path(exp_file).expanduser()
        if not path.is_file():
            raise UserError(f"exp file not found: {exp_file}")
    else:
        path = _find_by_name(str(exp_name))
    path = path.resolve()
    module = load_exp_module(path)
    exp_cls = getattr(module, "Exp", None)
    if not (isinstance(exp_cls, type) and issubclass(exp_cls, BaseExp)):
        raise UserError(f"exp file {path} must define `class Exp` subclassing an mmdet_lite "
                        "exp base")
    exp = exp_cls()
    exp.exp_name = path.stem
    return exp


def parse_tsize(tsize: Union[int, str, Sequence[int]]) -> Tuple[int, int]:
    """``416``, ``"416"``, ``(320, 416)`` or ``"320,416"`` -> ``(h, w)`` of positive ints."""
    values = tsize.replace("x", ",").split(",") if isinstance(tsize, str) else tsize
    values = [values] if isinstance(values, (int, np.integer)) else list(values)
    try:
        size = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise UserError(f"--tsize {tsize}: expected a size such as 416 or 320,416") from None
    size = size * 2 if len(size) == 1 else size
    if len(size) != 2 or min(size) <= 0:
        raise UserError(f"--tsize {tsize}: expected one or two positive sizes (h, w)")
    return size


def _looks_like_name(exp_file):
    text = os.fspath(exp_file)
    return not os.path.exists(text) and os.sep not in text and not text.endswith(".py")


def build_exp(exp_file: Union[str, os.PathLike, BaseExp, None], opts: Sequence[str] = (),
              tsize: Union[int, str, Sequence[int], None] = None,
              exp_name: Optional[str] = None) -> BaseExp:
    """Load an exp, apply ``KEY VALUE`` ``opts``, then ``tsize`` (int or (h, w)) as ``test_size``.

    ``exp_file`` is a path, an exp name under ``exps/`` (``"picodet_s_416_coco_lcnet"``), an exp
    object (used as it is, overrides applied to it) or ``None`` with ``exp_name`` (``-n``).
    """
    if isinstance(exp_file, BaseExp):
        exp = exp_file
    elif exp_file is not None and _looks_like_name(exp_file):
        exp = get_exp(None, str(exp_file))
    else:
        exp = get_exp(exp_file, exp_name)
    exp.merge(list(opts or ()))
    if tsize is not None:
        exp.test_size = parse_tsize(tsize)
    return exp

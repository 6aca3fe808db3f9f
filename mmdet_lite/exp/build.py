"""Load an exp: ``get_exp(exp_file)`` by path or ``get_exp(exp_name=...)`` from ``exps/**``."""
import hashlib
import importlib.util
import re
import sys
from pathlib import Path

from mmdet_lite.utils.errors import UserError

from .base_exp import EXP_FILE_ATTR, BaseExp

__all__ = ["get_exp", "EXPS_DIR"]

EXPS_DIR = Path(__file__).resolve().parents[2] / "exps"


def _module_name(path):
    # Unique per absolute path, so two exps with the same stem in different folders never collide.
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    return f"mmdet_lite_exp_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"


def _load_module(path):
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"exp file {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    setattr(module, EXP_FILE_ATTR, str(path))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)  # an error inside the exp file propagates as itself
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _find_by_name(exp_name):
    stem = exp_name[:-3] if exp_name.endswith(".py") else exp_name
    found = sorted(EXPS_DIR.glob(f"**/{stem}.py"))
    if not found:
        raise UserError(f"no exp named '{stem}': no {stem}.py under {EXPS_DIR}")
    if len(found) > 1:
        raise UserError(f"exp name '{stem}' is ambiguous: {', '.join(map(str, found))}; use -f PATH")
    return found[0]


def get_exp(exp_file=None, exp_name=None):
    """Instantiate ``class Exp`` of an exp file (path; ``exp_file`` wins) or of ``exps/**/<exp_name>.py``.

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
    module = _load_module(path)
    exp_cls = getattr(module, "Exp", None)
    if not (isinstance(exp_cls, type) and issubclass(exp_cls, BaseExp)):
        raise UserError(f"exp file {path} must define `class Exp` subclassing an mmdet_lite exp base")
    exp = exp_cls()
    exp.exp_name = path.stem
    return exp


def _rebuild_exp(exp_file, qualname, state):
    """Unpickle an exp that was loaded from ``exp_file``: load the file again, restore its fields."""
    module = sys.modules.get(_module_name(Path(exp_file)))
    if module is None or getattr(module, EXP_FILE_ATTR, None) != exp_file:
        module = _load_module(Path(exp_file))
    cls = module
    for part in qualname.split("."):
        cls = getattr(cls, part)
    exp = cls.__new__(cls)
    exp.__dict__.update(state)
    return exp

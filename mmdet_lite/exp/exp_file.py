"""Exp files as Python modules: imported by path under a unique name, and unpickled again.

``base_exp`` (pickling) and ``build`` (loading) both use this module; it imports neither.
"""
import hashlib
import importlib.util
import re
import sys
from pathlib import Path

from mmdet_lite.utils.errors import UserError

__all__ = ["EXP_FILE_ATTR", "load_exp_module", "rebuild_exp"]

# Set on the module of a loaded exp file: the absolute path it was loaded from.
EXP_FILE_ATTR = "__mmdet_lite_exp_file__"


def _module_name(path):
    # Unique per absolute path, so two exps with the same stem in different folders never collide.
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    return f"mmdet_lite_exp_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"


def load_exp_module(path):
    """Import the exp file ``path`` (absolute ``Path``) as a fresh module registered in
    ``sys.modules``.

    A syntax error or a failed import in the exp file is a ``UserError`` naming the file (and the
    line); any other error inside it propagates as itself (the half-made module is dropped).
    """
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"exp file {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    setattr(module, EXP_FILE_ATTR, str(path))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        sys.modules.pop(name, None)
        raise UserError(f"exp file {path}, line {err.lineno}: {err.msg}: "
                        f"{(err.text or '').strip()}") from None
    except ImportError as err:
        sys.modules.pop(name, None)
        raise UserError(f"exp file {path} imports what is not installed or does not exist: "
                        f"{err}") from None
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def rebuild_exp(exp_file, qualname, state):
    """Unpickle an exp that was loaded from ``exp_file``: load the file again,
    restore its fields."""
    module = sys.modules.get(_module_name(Path(exp_file)))
    if module is None or getattr(module, EXP_FILE_ATTR, None) != exp_file:
        module = load_exp_module(Path(exp_file))
    cls = module
    for part in qualname.split("."):
        cls = getattr(cls, part)
    exp = cls.__new__(cls)
    exp.__dict__.update(state)
    return exp

"""Read PaddlePaddle ``.pdparams`` weight files without Paddle, through a restricted unpickler.

A ``.pdparams`` file written by ``paddle.save(layer.state_dict())`` is a pickle of a dict
``name -> numpy.ndarray``. Pickles can run arbitrary code when loaded, so only the few globals that
numpy arrays need are resolved; any other global (``os.system``, ``builtins.eval``, ...) refuses the
whole file before anything of it runs.
"""
import collections
import pickle
from pathlib import Path

import numpy as np

from mmdet_lite.utils.errors import UserError

NAME_TABLE_KEY = "StructuredToParameterName@@"
# Paddle's split of arrays over 1 GiB (pickle protocol 2/3)
_BIG_PARAM_KEY = "UnpackBigParamInfor@@"


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` as protocol-2 pickles use it for bytes;
    only the latin-1 form is accepted."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("collections", "OrderedDict"): lambda: collections.OrderedDict,
    ("_codecs", "encode"): lambda: _latin1_encode,
}


ALLOWED_GLOBALS = frozenset(_ALLOWED)
"""``(module, name)`` of every global a Paddle weight pickle may reference."""


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals numpy arrays need; anything else is refused."""

    def find_class(self, module, name):
        factory = _ALLOWED.get((module, name))
        if factory is None:
            raise _RefusedGlobal(f"{module}.{name}")
        return factory()


def _join_big_params(params, path):
    """Reassemble arrays that Paddle split into ``name@@.i`` slices
    (pickle protocol 2/3, > 1 GiB)."""
    info = params.pop(_BIG_PARAM_KEY, None)
    if info is None:
        return
    try:
        for key, meta in info.items():
            parts = [params.pop(part) for part in meta["slices"]]
            params[key] = np.concatenate(parts).reshape(meta["OriginShape"])
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path}: damaged split-parameter table ({err})") from None


def load_pdparams(path):
    """Load a Paddle ``.pdparams`` file into an ordered dict ``name -> numpy.ndarray``.

    The ``StructuredToParameterName@@`` name table is dropped. Raises ``UserError`` naming the file
    if it is missing, is not a pickled state dict, or references anything beyond numpy arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such weight file")
    try:
        with path.open("rb") as f:
            obj = RestrictedUnpickler(f).load()
    except _RefusedGlobal as err:
        raise UserError(f"{path}: refused to load: the pickle references {err}, "
                        "which a Paddle weight "
                        "file never needs (corrupt or malicious file)") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, ImportError, MemoryError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a Paddle .pdparams file "
                        f"({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: not a Paddle state dict "
                        f"(the pickle holds a {type(obj).__name__})")
    params = collections.OrderedDict(obj)
    params.pop(NAME_TABLE_KEY, None)
    _join_big_params(params, path)
    for key, value in params.items():
        if not isinstance(key, str):
            raise UserError(f"{path}: not a Paddle state dict (key {key!r} is not a string)")
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            kind = (type(value).__name__ if not isinstance(value, np.ndarray)
                    else f"{value.dtype} array")
            raise UserError(f"{path}: entry {key!r} is a {kind}, not a numeric array: is it an "
                            "optimizer state (.pdopt) rather than model weights (.pdparams)?")
    return params

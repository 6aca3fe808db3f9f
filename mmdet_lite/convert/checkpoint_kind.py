"""What a weight file to convert is, told from its content (never its name), and its tensors.

Two kinds are known:

- ``"torch"``: a ``torch.save`` file, either the zip archive of PyTorch >= 1.6 (a zip holding
  ``<name>/data.pkl``) or the legacy format (a pickle stream whose first object is PyTorch's
  magic number). Loaded with ``torch.load(weights_only=True)`` (``read_checkpoint``): a pickle
  that needs code is refused, nothing of it runs. The state dict is ``state_dict`` (mmcv / mmdet
  checkpoints: ``meta`` + ``state_dict`` [+ ``optimizer``]), ``model`` (ours), or the file itself.
- ``"pdparams"``: another pickle stream whose globals (read from its opcodes, nothing executed)
  are only those numpy arrays need (``paddle.save`` of a state dict: numpy arrays and the
  ``StructuredToParameterName@@`` name table), loaded by ``pdparams.load_pdparams``'s restricted
  unpickler. A pickle referencing anything else (code) is refused.

Anything else (empty, truncated archive, another format) is a ``UserError`` naming the file.
"""
import pickletools
import zipfile
from pathlib import Path

import numpy as np
import torch

from mmdet_lite.convert.pdparams import ALLOWED_GLOBALS, load_pdparams
from mmdet_lite.utils.errors import UserError

__all__ = ["KIND_NAMES", "KIND_ORIGINS", "detect_checkpoint_kind", "load_source_weights",
           "check_source_kind"]

KIND_NAMES = {"torch": "PyTorch checkpoint", "pdparams": "Paddle .pdparams"}
"""Each kind as messages name it."""
KIND_ORIGINS = {"torch": "PyTorch", "pdparams": "Paddle"}
"""The framework that writes each kind (conversion reports)."""

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80
# torch.serialization's legacy format starts with this number, pickled as LONG1 (opcode 0x8a,
# 10 bytes, little endian) right after the PROTO opcode.
_TORCH_LEGACY_MAGIC = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_HEADER_BYTES = 16


def _pickle_globals(path):
    """The ``(module, name)`` globals of the first pickle in ``path``, from its opcodes (nothing is
    built or run); ``UserError`` naming the file when the stream is damaged or truncated."""
    found, pushed, memo = set(), [], {}
    try:
        with path.open("rb") as f:
            for opcode, arg, _ in pickletools.genops(f):
                name = opcode.name
                if name == "GLOBAL":
                    found.add(tuple(arg.split(" ", 1)))
                elif name == "STACK_GLOBAL":
                    found.add((pushed[-2], pushed[-1]) if len(pushed) > 1 else ("?", "?"))
                elif name == "MEMOIZE":
                    memo[len(memo)] = pushed[-1] if pushed else None
                elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                    memo[int(arg)] = pushed[-1] if pushed else None
                elif name in ("BINGET", "LONG_BINGET", "GET"):
                    pushed.append(memo.get(int(arg)))
                elif name == "STOP":
                    break
                elif opcode.stack_after:
                    pushed.append(arg if isinstance(arg, str) else None)
    except (ValueError, EOFError) as err:
        raise UserError(f"{path}: a damaged or truncated pickle, not a readable weight file "
                        f"({err})") from None
    return found


def detect_checkpoint_kind(path):
    """``"torch"`` or ``"pdparams"`` for the weight file at ``path``, from its content (the first
    bytes; a zip's member names; a pickle's globals); ``UserError`` naming the file when it is
    neither, is damaged, or is a pickle that references code."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such weight file")
    with path.open("rb") as f:
        header = f.read(_HEADER_BYTES)
    if not header:
        raise UserError(f"{path}: the weight file is empty")
    if header.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as err:
            raise UserError(f"{path}: a damaged or truncated zip archive, not a readable "
                            f"PyTorch checkpoint ({err})") from None
        if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
            return "torch"
        raise UserError(f"{path}: a zip archive without data.pkl (a numpy .npz?), neither a "
                        "PyTorch checkpoint nor a Paddle .pdparams")
    if header[0] == _PICKLE_PROTO:
        if header[2:2 + len(_TORCH_LEGACY_MAGIC)] == _TORCH_LEGACY_MAGIC:
            return "torch"
        refused = sorted(_pickle_globals(path) - ALLOWED_GLOBALS)
        if refused:
            raise UserError(f"{path} was refused: the pickle references "
                            f"{'.'.join(map(str, refused[0]))}, which neither a Paddle nor a "
                            "PyTorch weight file needs (corrupt or malicious file; nothing in it "
                            "ran)")
        return "pdparams"
    raise UserError(f"{path}: neither a PyTorch checkpoint nor a Paddle .pdparams (unknown "
                    f"content starting {header[:8]!r})")


def _as_numpy(tensor):
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy()


def _load_torch(path):
    from mmdet_lite.utils.checkpoint import load_checkpoint_state, read_checkpoint

    obj = read_checkpoint(path)
    if isinstance(obj.get("state_dict"), dict):
        obj = {"model": obj["state_dict"]}
    return {key: _as_numpy(value) for key, value in load_checkpoint_state(obj, path).items()}


def load_source_weights(path, kind=None):
    """``(kind, {name: numpy array})`` of the weight file at ``path`` (see the module doc);
    ``kind``: what ``detect_checkpoint_kind`` already said of it (detected when None)."""
    kind = kind or detect_checkpoint_kind(path)
    if kind == "torch":
        return kind, _load_torch(path)
    return kind, {key: np.asarray(value) for key, value in load_pdparams(path).items()}


def check_source_kind(path, kind, accepted, exp_name):
    """``UserError`` naming ``path``, its ``kind`` and what ``exp_name`` converts unless ``kind``
    is in ``accepted`` (kinds, see ``KIND_NAMES``)."""
    if kind in accepted:
        return
    expected = " or ".join(KIND_NAMES[k] for k in accepted)
    raise UserError(f"{path} is a {KIND_NAMES[kind]} but {exp_name} converts from {expected} "
                    "files (wrong file, or wrong -f?)")

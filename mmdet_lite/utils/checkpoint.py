"""Checkpoints: safe loading (``weights_only``), strict loading with a clear report, atomic saving.

A checkpoint written by the project is a dict with at least ``model`` (a state dict); training
adds ``optimizer``, ``scheduler``, ``ema``, ``scaler``, ``epoch``, ``iteration``, ``best_ap``.
Every loader also accepts a bare state dict.
"""
import os
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import UserError

__all__ = ["LoadReport", "read_checkpoint", "load_checkpoint", "load_checkpoint_state",
           "load_weights", "save_checkpoint",
           "remove_stale_temporaries", "checkpoint_epoch"]

_TMP_SUFFIX = ".tmp"

_MAX_LISTED = 8


def read_checkpoint(path):
    """Read a checkpoint with ``torch.load(weights_only=True)``: the whole dict (or state dict).

    Raises ``UserError`` naming the file when it is missing, is not a PyTorch checkpoint, or holds
    pickled code or objects other than tensors and containers (refused; nothing in it runs).
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise UserError(f"checkpoint {path} is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        hint = _paddle_hint(path)
        reason = _refusal_reason(err) or "torch.load(weights_only=True) cannot read it safely"
        raise UserError(f"checkpoint {path} was refused: {reason} (a corrupt file or pickled "
                        f"Python objects; only tensors are loaded and nothing in it ran)"
                        f"{hint}") from None
    except Exception as err:  # torch raises many types (RuntimeError, KeyError, EOFError, ...)
        raise UserError(f"{path} is not a readable PyTorch checkpoint "
                        f"({type(err).__name__}: {_first_line(err)}){_paddle_hint(path)}"
                        ) from None
    if not isinstance(obj, dict):
        raise UserError(f"checkpoint {path} holds a {type(obj).__name__}, expected a dict "
                        "(a state dict or {'model': state_dict, ...})")
    return obj


def _paddle_hint(path):
    """A hint for a file that ``torch.load`` refused: whether its content is a Paddle pickle."""
    from mmdet_lite.convert.checkpoint_kind import detect_checkpoint_kind

    try:
        is_paddle = detect_checkpoint_kind(path) == "pdparams"
    except UserError:
        is_paddle = False
    return " (a Paddle .pdparams: convert it first with tools/convert_weights.py)" \
        if is_paddle else ""


def load_checkpoint(path):
    """Return the model state dict of a checkpoint: ``obj["model"]`` or the bare state dict itself.

    A ``module.`` prefix left by DistributedDataParallel is removed.
    """
    return load_checkpoint_state(read_checkpoint(path), path)


def load_checkpoint_state(obj, path):
    """``load_checkpoint`` of a dict already read from ``path`` (named in errors)."""
    state = obj["model"] if isinstance(obj.get("model"), dict) else obj
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad or not state:
        what = (f"entries that are not tensors ({_short_list(map(str, bad))})" if bad
                else "no tensors")
        raise UserError(f"checkpoint {path} is not a model checkpoint: its state dict has {what}")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


@dataclass
class LoadReport:
    """What ``load_weights`` did: the keys loaded and those it could not load."""

    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    mismatched: list = field(default_factory=list)  # (key, checkpoint shape, model shape)

    @property
    def ok(self):
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self):
        """One line: counts and the first few names of each kind of problem."""
        parts = [f"{len(self.loaded)} tensors loaded"]
        if self.missing:
            parts.append(f"{len(self.missing)} missing from the checkpoint "
                         f"({_short_list(self.missing)})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected ({_short_list(self.unexpected)})")
        if self.mismatched:
            items = [f"{k}: checkpoint {tuple(a)} vs model {tuple(b)}"
                     for k, a, b in self.mismatched]
            parts.append(f"{len(self.mismatched)} with another shape ({_short_list(items)})")
        return "; ".join(parts)

    def details(self):
        """``(what, names)`` for each non-empty kind of problem, every name listed."""
        kinds = (("tensors whose shapes differ were skipped",
                  [f"{k}: checkpoint {tuple(a)} vs model {tuple(b)}"
                   for k, a, b in self.mismatched]),
                 ("model tensors are not in the checkpoint (kept as initialised)", self.missing),
                 ("checkpoint tensors are not in the model (unused)", self.unexpected))
        return [(what, names) for what, names in kinds if names]


def load_weights(model, checkpoint, strict=True, source=None):
    """Load a checkpoint (path or state dict) into ``model``; return a ``LoadReport``.

    ``source`` names a state dict's file in errors.
    ``strict=True``: any missing, unexpected or shape-mismatched tensor is a ``UserError`` listing
    them (e.g. a checkpoint of another model or another number of classes). ``strict=False``: the
    tensors that fit are loaded and the rest is reported (transfer learning). BatchNorm's
    ``num_batches_tracked`` counters never count as missing.
    """
    is_path = isinstance(checkpoint, (str, os.PathLike))
    source = str(checkpoint) if is_path else (source or "the state dict")
    state = load_checkpoint(checkpoint) if is_path else checkpoint
    own = model.state_dict()
    report = LoadReport()
    usable = {}
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            report.mismatched.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            usable[key] = value
            report.loaded.append(key)
    report.missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if strict and not report.ok:
        raise UserError(f"checkpoint {source} does not fit the model{_hint(report, own)}: "
                        f"{report.summary()}")
    model.load_state_dict(usable, strict=False)
    return report


def _hint(report, own):
    """What a failed strict load most likely means, for its error line."""
    if len(report.loaded) < len(own) / 2 or (report.mismatched
                                              and (report.missing or report.unexpected)):
        return " -- a checkpoint of another model (another variant or size?)"
    # Class heads differ in their first dimension only, all by the same number of classes.
    deltas = {a[0] - b[0] if len(a) == len(b) and tuple(a[1:]) == tuple(b[1:]) else None
              for _, a, b in report.mismatched}
    if report.mismatched and not (report.missing or report.unexpected) and len(deltas) == 1 \
            and None not in deltas:
        return " -- made for another number of classes? set num_classes to the checkpoint's"
    return ""


def save_checkpoint(obj, path):
    """Write ``obj`` with ``torch.save`` atomically: to ``path + '.tmp'``, fsync, then rename.

    Missing parent folders are created; an unwritable folder is a ``UserError`` naming it.
    """
    path = Path(path)
    folder = path.parent
    tmp = path.with_name(path.name + _TMP_SUFFIX)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:  # torch's zip writer raises RuntimeError on ENOSPC
        if tmp.exists():
            tmp.unlink()
        reason = err.strerror if isinstance(err, OSError) and err.strerror else _first_line(err)
        raise UserError(f"cannot write checkpoint {path} in folder {folder} ({reason}); "
                        f"the previous {path.name}, if any, is intact") from None
    return path


def remove_stale_temporaries(folder):
    """Delete the ``*.pth.tmp`` files that a killed ``save_checkpoint`` left in ``folder``;
    return their paths."""
    folder = Path(folder)
    stale = sorted(folder.glob(f"*.pth{_TMP_SUFFIX}")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def checkpoint_epoch(path):
    """The ``epoch`` (completed epochs) a training checkpoint at ``path`` records, else None."""
    try:
        epoch = read_checkpoint(path).get("epoch")
    except UserError:
        return None
    return int(epoch) if isinstance(epoch, int) else None


def _first_line(err):
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else "no message"


def _refusal_reason(err):
    """``"it references posix.system"`` when weights_only refused a global, else None."""
    match = re.search(r"Unsupported global: (GLOBAL )?([\w.]+)", str(err))
    return f"it references {match.group(2)}" if match else None


def _short_list(items):
    items = list(items)
    head = ", ".join(items[:_MAX_LISTED])
    return head + (f", ... {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")

"""Output folders and atomic file writes shared by the tools."""
import contextlib
import json
import os

from .errors import UserError


def ensure_writable_dir(folder):
    """Create ``folder`` if needed; a UserError naming it if it cannot be created or written."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create output folder {folder}: {err.strerror or err}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"output folder {folder} is not writable")
    return folder


def write_json_atomic(obj, path):
    """Write ``obj`` as JSON to a temporary name beside ``path``, then rename it into place."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None

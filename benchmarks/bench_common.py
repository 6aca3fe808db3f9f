"""Shared by the benchmark scripts: paths, the Paddle interpreter, the load average, subprocesses.

Importing it puts the repository root on ``sys.path`` (the scripts run from any folder).
"""
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("MMDET_LITE_SHARED", REPO_ROOT.parent / "shared"))
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def load():
    """The 1-minute load average (the machine may be shared)."""
    return os.getloadavg()[0]


def paddle_python():
    """The Paddle reference interpreter: ``$MMDET_LITE_PADDLE_PYTHON`` (set by the Makefile)."""
    path = os.environ.get("MMDET_LITE_PADDLE_PYTHON",
                          str(Path.home() / ".cache/mmdet_lite/paddle-probe/bin/python"))
    if not Path(path).exists():
        raise SystemExit(f"Paddle interpreter {path} not found: set MMDET_LITE_PADDLE_PYTHON")
    return path


def picodet_exp_file(name):
    return REPO_ROOT / "exps/picodet" / f"{name}.py"


def run(cmd, env=None, timeout=1800):
    """Run ``cmd`` in the repository root; its stdout + stderr, or exit naming what failed."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=REPO_ROOT,
                          env=env, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-2000:]}\n"
                         f"{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def run_in_folder(name, root, run_config):
    """``(name, run_config(root/name), None)``, or ``(name, None, error text)`` when it raises
    (an exception or a ``pytest.fail``): the parity scripts report a config and go on."""
    import pytest

    work = Path(root) / name
    work.mkdir()
    try:
        return name, run_config(str(work)), None
    except (Exception, pytest.fail.Exception) as err:
        return name, None, f"{type(err).__name__}: {str(err).strip()[-600:]}"

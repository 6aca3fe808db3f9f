"""Shared test fixtures: the repository root, the shared configs and the Paddle reference interpreter."""
import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("MMDET_LITE_SHARED", REPO_ROOT.parent / "shared"))
PADDLE_CONFIGS = SHARED_DIR / "paddledet_configs"
_DEFAULT_PADDLE_PYTHON = Path.home() / ".cache/mmdet_lite/paddle-probe/bin/python"


def paddle_python():
    """Path of the Python interpreter of the Paddle reference environment (never skipped: fails)."""
    path = os.environ.get("MMDET_LITE_PADDLE_PYTHON")
    if path:
        return path
    if _DEFAULT_PADDLE_PYTHON.exists():
        return str(_DEFAULT_PADDLE_PYTHON)
    pytest.fail("the Paddle reference environment is missing: run the tests through `make test`, "
                "which creates it and sets MMDET_LITE_PADDLE_PYTHON")


def run_paddle(script, *args, timeout=900):
    """Run a reference script under the Paddle interpreter; return its stdout, fail with its stderr."""
    env = dict(os.environ, OMP_NUM_THREADS="1", FLAGS_use_mkldnn="0", PYTHONPATH="")
    proc = subprocess.run([paddle_python(), str(script), *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=REPO_ROOT)
    if proc.returncode != 0:
        pytest.fail(f"reference script {script} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


@pytest.fixture(scope="session")
def paddle_configs():
    assert PADDLE_CONFIGS.is_dir(), f"PaddleDetection configs not found at {PADDLE_CONFIGS}"
    return PADDLE_CONFIGS

"""Shared test fixtures: the repository root, the shared configs, the Paddle interpreter."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Test helper modules that also serve fixtures through ``pytest_plugins``: rewrite their asserts
# on their first import.
pytest.register_assert_rewrite("sample_files", "solov2_cases")

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
    """Run a reference script under the Paddle interpreter; return its stdout, fail with its
    stderr."""
    env = dict(os.environ, OMP_NUM_THREADS="1", FLAGS_use_mkldnn="0", PYTHONPATH="")
    proc = subprocess.run([paddle_python(), str(script), *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=REPO_ROOT)
    if proc.returncode != 0:
        pytest.fail(f"reference script {script} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


def mmdet_site():
    """The folder of mmdet's reference packages (``make mmdet-env``; never skipped: fails)."""
    path = os.environ.get("MMDET_LITE_MMDET_SITE")
    if not path or not os.path.isfile(os.path.join(path, ".ready")):
        pytest.fail("the mmdet reference packages are missing: run the tests through `make test`, "
                    "which installs them and sets MMDET_LITE_MMDET_SITE")
    return path


def run_mmdet(script, *args, timeout=900):
    """Run a reference script with mmdet 3.3.0 importable (this interpreter, whose torch it uses;
    the script imports ``mmdet_stubs`` first, and never mmdet_lite); return its stdout, fail with
    its stderr."""
    pythonpath = os.pathsep.join([mmdet_site(), str(REPO_ROOT / "tests" / "reference")])
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", PYTHONPATH=pythonpath)
    proc = subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=REPO_ROOT)
    if proc.returncode != 0:
        pytest.fail(f"reference script {script} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


def start_tool(tool, *args, cwd):
    """``tools/<tool> args`` as a CPU-only, one-thread subprocess in ``cwd`` (``Popen``, text
    pipes)."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen([sys.executable, str(REPO_ROOT / "tools" / tool), *map(str, args)],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


class CodePayload:
    """An object whose unpickling runs ``os.makedirs(marker)``: the file that holds it proves
    that a loader refused it when ``marker`` still does not exist."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def one_line_error(code, err):
    """Assert a tool's exit code 2 and a one-line ``error: ...`` stderr; return that line."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def run_paddle_npz(script, folder, arrays):
    """Save ``arrays`` as ``folder/in.npz``, run ``script in.npz out.npz`` with ``run_paddle`` and
    return the arrays of ``out.npz`` as a dict."""
    np.savez(folder / "in.npz", **arrays)
    run_paddle(script, folder / "in.npz", folder / "out.npz")
    return dict(np.load(folder / "out.npz"))


@pytest.fixture(scope="session")
def paddle_configs():
    assert PADDLE_CONFIGS.is_dir(), f"PaddleDetection configs not found at {PADDLE_CONFIGS}"
    return PADDLE_CONFIGS


def assert_same_coco_detections(ours, ref, box_tol=1e-3, score_tol=1e-5):
    """COCO-format detection lists equal up to float rounding: per (image, category) the same
    number of detections, matched one to one (Hungarian on score + box distance), every score
    within ``score_tol`` and every box coordinate within ``box_tol`` pixels.

    Exact equality is not expected across process counts: one process with two threads and two
    processes with one thread each reduce in other orders (differences ~1e-5 px).
    """
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    def groups(dets):
        out = {}
        for d in dets:
            out.setdefault((d["image_id"], d["category_id"]), []).append(d)
        return out

    a, b = groups(ours), groups(ref)
    assert {k: len(v) for k, v in a.items()} == {k: len(v) for k, v in b.items()}
    worst_score = worst_box = 0.0
    for key, dets in a.items():
        sa = np.array([d["score"] for d in dets])
        sb = np.array([d["score"] for d in b[key]])
        ba = np.array([d["bbox"] for d in dets], dtype=np.float64)
        bb = np.array([d["bbox"] for d in b[key]], dtype=np.float64)
        cost = (np.abs(sa[:, None] - sb[None]) / score_tol
                + np.abs(ba[:, None] - bb[None]).max(-1) / box_tol)
        rows, cols = linear_sum_assignment(cost)
        worst_score = max(worst_score, np.abs(sa[rows] - sb[cols]).max())
        worst_box = max(worst_box, np.abs(ba[rows] - bb[cols]).max())
    assert worst_score <= score_tol and worst_box <= box_tol, (worst_score, worst_box)


@pytest.fixture(scope="module")
def shapes4(tmp_path_factory):
    """Seed 3 gives four training images with 5 shapes each and two val images (3 and 6)."""
    from mmdet_lite.data.synthetic import make_shapes_dataset

    root = tmp_path_factory.mktemp("shapes4")
    data = make_shapes_dataset(root, num_train=4, num_val=2, seed=3)
    assert len(data["train"]["annotations"]) == 20 and len(data["val"]["annotations"]) == 9
    return root

"""User mistakes on the command line: one line on stderr, exit code 2, never a traceback."""
import pickle

import pytest

from conftest import CodePayload, one_line_error, start_tool
from tiny_picodet import EXP_FILE, NUM_CLASSES, TSIZE, write_checkpoint


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start every failing command at once (they overlap their start-up), then collect them."""
    tmp = tmp_path_factory.mktemp("errors")
    ckpt = write_checkpoint(tmp / "tiny.pth")
    hostile = tmp / "hostile.pth"
    with open(hostile, "wb") as f:
        pickle.dump({"model": CodePayload(str(tmp / "payload_ran"))}, f, protocol=2)
    (tmp / "a_file").write_text("")
    exp = ["-f", EXP_FILE]
    base = ["--tsize", TSIZE, "--device", "cpu", "num_classes", NUM_CLASSES]
    commands = {
        "gpu": ("eval.py", *exp, "-c", ckpt, "--device", "gpu"),
        "unknown_key": ("eval.py", *exp, "-c", ckpt, *base, "num_clases", "5"),
        "missing_ckpt": ("export_onnx.py", *exp, "-c", tmp / "missing.pth",
                         "num_classes", NUM_CLASSES),
        "hostile": ("eval.py", *exp, "-c", hostile, *base),
        "unwritable": ("eval.py", *exp, "-c", ckpt, *base, "output_dir", tmp / "a_file" / "out"),
    }
    procs = {name: start_tool(*cmd, cwd=tmp) for name, cmd in commands.items()}
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        results[name] = (proc.returncode, out, err)
    return tmp, results


def _one_line_error(result):
    code, _, err = result
    return one_line_error(code, err)


def test_gpu_without_cuda(runs):
    _, results = runs
    expected = "error: --device gpu was given but no CUDA GPU is available; use --device cpu"
    assert _one_line_error(results["gpu"]) == expected


def test_unknown_exp_key_is_named(runs):
    line = _one_line_error(runs[1]["unknown_key"])
    assert "unknown exp key 'num_clases'" in line and "num_classes" in line


def test_missing_checkpoint_is_named(runs):
    line = _one_line_error(runs[1]["missing_ckpt"])
    assert line.startswith("error: checkpoint ") and line.endswith("missing.pth does not exist")


def test_hostile_pickle_is_refused_and_never_runs(runs):
    tmp, results = runs
    line = _one_line_error(results["hostile"])
    assert "hostile.pth was refused" in line
    assert not (tmp / "payload_ran").exists()


def test_unwritable_output_folder_is_named(runs):
    line = _one_line_error(runs[1]["unwritable"])
    assert "cannot create output folder" in line and "a_file/out" in line

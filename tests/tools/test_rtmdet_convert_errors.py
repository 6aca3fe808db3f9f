"""``tools/convert_weights.py`` with an RTMDet exp on a wrong weight file: one line on stderr."""
import pickle

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT, one_line_error, start_tool

TINY_EXP = REPO_ROOT / "exps/rtmdet/rtmdet_tiny_8xb32-300e_coco.py"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rtmdet_convert_errors")
    with open(tmp / "rtmdet_tiny.pth", "wb") as f:  # a .pdparams under a .pth name
        pickle.dump({"backbone.stem.0.conv.weight": np.zeros((12, 3, 3, 3), np.float32)}, f,
                    protocol=2)
    torch.save({"meta": {"mmdet_version": "3.3.0"},
                "state_dict": {"backbone.stem.0.conv.weight": torch.zeros(12, 3, 3, 3)}},
               tmp / "full.pth")
    data = (tmp / "full.pth").read_bytes()
    (tmp / "truncated.pth").write_bytes(data[:len(data) // 3])
    procs = {name: start_tool("convert_weights.py", "-f", TINY_EXP, "-c", tmp / src,
                              "-oc", tmp / f"{name}_out.pth", cwd=tmp)
             for name, src in (("paddle", "rtmdet_tiny.pth"), ("truncated", "truncated.pth"))}
    results = {}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        results[name] = (proc.returncode, err)
    return tmp, results


def test_paddle_file_for_rtmdet_exp(runs):
    tmp, results = runs
    assert one_line_error(*results["paddle"]) == (
        f"error: {tmp / 'rtmdet_tiny.pth'} is a Paddle .pdparams but rtmdet_tiny_8xb32-300e_coco "
        "converts from PyTorch checkpoint files (wrong file, or wrong -f?)")
    assert not (tmp / "paddle_out.pth").exists()


def test_truncated_pth_for_rtmdet_exp(runs):
    tmp, results = runs
    line = one_line_error(*results["truncated"])
    assert line.startswith(f"error: {tmp / 'truncated.pth'}: a damaged or truncated zip archive")

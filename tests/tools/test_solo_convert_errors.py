"""``tools/convert_weights.py`` on the wrong weight file: one line on stderr, exit code 2, never
a traceback; the file's kind comes from its content, not its name."""
import pickle

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT, CodePayload, one_line_error, start_tool

PADDLE_EXP = REPO_ROOT / "exps/solov2/solov2_r50_fpn_3x_coco.py"
SOLO_EXP = REPO_ROOT / "exps/solov2/solov2_r50_fpn_3x_solo.py"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Write the bad files, start every command at once, collect them."""
    tmp = tmp_path_factory.mktemp("solo_convert_errors")
    solo = {"meta": {"mmdet_version": "1.0.0"},
            "state_dict": {"backbone.conv1.weight": torch.zeros(64, 3, 7, 7)}}
    torch.save(solo, tmp / "SOLOv2_R50_3x.pdparams")  # a .pth under a Paddle name
    with open(tmp / "solov2_r50_fpn_3x.pth", "wb") as f:  # a .pdparams under a .pth name
        pickle.dump({"conv1.conv1.conv.weight": np.zeros((64, 3, 7, 7), np.float32)}, f,
                    protocol=2)
    torch.save(solo, tmp / "full.pth")
    data = (tmp / "full.pth").read_bytes()
    (tmp / "truncated.pth").write_bytes(data[:len(data) // 3])
    torch.save({"state_dict": {"w": torch.ones(1)}, "meta": CodePayload(str(tmp / "payload_ran"))},
               tmp / "hostile.pth")
    commands = {
        "solo_to_paddle_exp": (PADDLE_EXP, "SOLOv2_R50_3x.pdparams"),
        "pdparams_to_solo_exp": (SOLO_EXP, "solov2_r50_fpn_3x.pth"),
        "truncated": (SOLO_EXP, "truncated.pth"),
        "hostile": (SOLO_EXP, "hostile.pth"),
    }
    procs = {name: start_tool("convert_weights.py", "-f", exp, "-c", tmp / src,
                              "-oc", tmp / f"{name}_out.pth", cwd=tmp)
             for name, (exp, src) in commands.items()}
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        results[name] = (proc.returncode, err)
    return tmp, results


@pytest.mark.parametrize("case, message", [
    ("solo_to_paddle_exp", "{tmp}/SOLOv2_R50_3x.pdparams is a PyTorch checkpoint but "
     "solov2_r50_fpn_3x_coco converts from Paddle .pdparams files (wrong file, or wrong -f?)"),
    ("pdparams_to_solo_exp", "{tmp}/solov2_r50_fpn_3x.pth is a Paddle .pdparams but "
     "solov2_r50_fpn_3x_solo converts from PyTorch checkpoint files (wrong file, or wrong -f?)"),
])
def test_a_file_of_the_other_kind_is_named_with_both_kinds(runs, case, message):
    tmp, results = runs
    assert one_line_error(*results[case]) == "error: " + message.format(tmp=tmp)
    assert not (tmp / f"{case}_out.pth").exists()


def test_truncated_pth(runs):
    tmp, results = runs
    line = one_line_error(*results["truncated"])
    assert line.startswith(f"error: {tmp / 'truncated.pth'}: a damaged or truncated zip archive")


def test_pth_pickle_needing_code_is_refused_and_never_runs(runs):
    tmp, results = runs
    line = one_line_error(*results["hostile"])
    assert f"{tmp / 'hostile.pth'} was refused" in line
    assert not (tmp / "payload_ran").exists()

"""The restricted .pdparams reader: real Paddle files load,
hostile or broken pickles are refused."""
import builtins
import collections
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn

from mmdet_lite.convert.converter import convert_state_dict
from mmdet_lite.convert.pdparams import NAME_TABLE_KEY, load_pdparams
from mmdet_lite.utils.errors import UserError

from conftest import REPO_ROOT, run_paddle

REFERENCE = REPO_ROOT / "tests/reference/paddle_save_pdparams.py"


@pytest.fixture(scope="module")
def paddle_files(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("pdparams")
    run_paddle(REFERENCE, out_dir)
    return out_dir


class Tiny(nn.Module):
    """PyTorch twin of the reference script's layer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean(dim=(2, 3)))


@pytest.mark.parametrize("name", ["tiny.pdparams", "tiny_protocol2.pdparams"])
def test_real_paddle_file_loads(paddle_files, name):
    params = load_pdparams(paddle_files / name)
    expected = np.load(paddle_files / "params.npz")
    assert NAME_TABLE_KEY not in params
    assert list(params) == list(expected.files)
    for key, value in params.items():
        assert isinstance(value, np.ndarray) and value.dtype == np.float32
        np.testing.assert_array_equal(value, expected[key])


def test_real_paddle_file_converts_to_same_outputs(paddle_files):
    model = Tiny().eval()
    state_dict, report = convert_state_dict(load_pdparams(paddle_files / "tiny.pdparams"), model,
                                            [])
    assert report.transposed == ["fc.weight"]
    model.load_state_dict(state_dict, strict=True)
    io = np.load(paddle_files / "io.npz")
    with torch.no_grad():
        output = model(torch.from_numpy(io["input"])).numpy()
    np.testing.assert_allclose(output, io["output"], atol=1e-5)


class _Payload:
    """Pickles to a call of ``func(*args)``, as an attacker's file would."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _hostile_payloads(marker):
    yield "os.system", _Payload(os.system, f"touch {marker}")
    yield "builtins.open", _Payload(builtins.open, str(marker), "w")
    yield "builtins.exec", _Payload(builtins.exec, f"open({str(marker)!r}, 'w').close()")


@pytest.mark.parametrize("index", range(3))
def test_hostile_pickle_is_refused_without_running(tmp_path, index):
    marker = tmp_path / "pwned"
    label, payload = list(_hostile_payloads(marker))[index]
    path = tmp_path / f"evil_{index}.pdparams"
    # The payload hides among genuine-looking arrays, as in a tampered checkpoint.
    obj = collections.OrderedDict([("conv.weight", np.ones((2, 2), np.float32)), ("x", payload)])
    path.write_bytes(pickle.dumps(obj, protocol=4))
    with pytest.raises(UserError) as err:
        load_pdparams(path)
    assert str(path) in str(err.value) and "refused" in str(err.value), label
    assert not marker.exists(), f"{label} payload ran"


def test_missing_file(tmp_path):
    path = tmp_path / "nope.pdparams"
    with pytest.raises(UserError, match="nope.pdparams"):
        load_pdparams(path)


@pytest.mark.parametrize("content", [b"", b"not a pickle at all\n", b"\x80\x04\x95garbage"])
def test_not_a_pickle(tmp_path, content):
    path = tmp_path / "broken.pdparams"
    path.write_bytes(content)
    with pytest.raises(UserError, match="broken.pdparams"):
        load_pdparams(path)


@pytest.mark.parametrize("obj", [[np.zeros(3)], {"LR_Scheduler": {"last_epoch": 3}},
                                 {"a": np.array(["x"], dtype=object)}])
def test_pickle_that_is_not_a_state_dict(tmp_path, obj):
    path = tmp_path / "other.pdparams"
    path.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(UserError, match="other.pdparams"):
        load_pdparams(path)

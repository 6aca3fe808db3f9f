"""``checkpoint_kind``: a weight file's kind from its content, whatever its name, and its tensors
as ``{name: numpy array}`` (mmcv ``meta`` + ``state_dict``, ours ``model``, a bare state dict)."""
import pickle

import numpy as np
import pytest
import torch

from mmdet_lite.convert.checkpoint_kind import (
    check_source_kind,
    detect_checkpoint_kind,
    load_source_weights,
)
from mmdet_lite.convert.pdparams import NAME_TABLE_KEY
from mmdet_lite.utils.errors import UserError

from conftest import REPO_ROOT, CodePayload, run_paddle

WEIGHTS = {"backbone.conv1.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
           "backbone.bn1.num_batches_tracked": torch.tensor(7)}


def _mmcv_checkpoint():
    return {"meta": {"mmdet_version": "1.0.0+unknown", "CLASSES": ("person", "bicycle"),
                     "epoch": 36, "config": "model = dict(type='SOLOv2')"},
            "state_dict": {f"module.{k}": v for k, v in WEIGHTS.items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "params": [0, 1]}]}}


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_torch_files_are_torch_whatever_their_name(tmp_path, zip_format):
    path = tmp_path / "SOLOv2_R50_3x.pdparams"  # a misleading name
    torch.save(_mmcv_checkpoint(), path, _use_new_zipfile_serialization=zip_format)
    assert detect_checkpoint_kind(path) == "torch"
    kind, params = load_source_weights(path)
    assert kind == "torch" and list(params) == list(WEIGHTS)  # module. prefix stripped
    for key, value in WEIGHTS.items():
        np.testing.assert_array_equal(params[key], value.numpy())
        assert params[key].dtype == value.numpy().dtype


def test_our_checkpoints_and_bare_state_dicts_and_bfloat16(tmp_path):
    torch.save({"model": WEIGHTS, "epoch": 3}, tmp_path / "ours.bin")
    torch.save({"w": torch.ones(2, dtype=torch.bfloat16)}, tmp_path / "bare")
    assert list(load_source_weights(tmp_path / "ours.bin")[1]) == list(WEIGHTS)
    kind, params = load_source_weights(tmp_path / "bare")
    assert kind == "torch" and params["w"].dtype == np.float32 and params["w"].tolist() == [1, 1]


@pytest.mark.parametrize("protocol", [2, 4])
def test_paddle_pickles_are_pdparams_whatever_their_name(tmp_path, protocol):
    path = tmp_path / "weights.pth"
    arrays = {"conv1.weight": np.ones((2, 3), np.float32)}
    with open(path, "wb") as f:
        pickle.dump({**arrays, NAME_TABLE_KEY: {"conv1.weight": "conv2d_0.w_0"}}, f,
                    protocol=protocol)
    assert detect_checkpoint_kind(path) == "pdparams"
    kind, params = load_source_weights(path)
    assert kind == "pdparams" and list(params) == ["conv1.weight"]
    np.testing.assert_array_equal(params["conv1.weight"], arrays["conv1.weight"])


def test_files_written_by_paddle_save_are_pdparams(tmp_path):
    run_paddle(REPO_ROOT / "tests/reference/paddle_save_pdparams.py", tmp_path)
    expected = dict(np.load(tmp_path / "params.npz"))
    for name in ("tiny.pdparams", "tiny_protocol2.pdparams"):  # protocol 4 (memo) and 2
        renamed = tmp_path / name.replace(".pdparams", ".pth")
        renamed.write_bytes((tmp_path / name).read_bytes())
        kind, params = load_source_weights(renamed)
        assert kind == "pdparams" and sorted(params) == sorted(expected), name
        for key, value in expected.items():
            np.testing.assert_array_equal(params[key], value)


def test_unknown_empty_and_truncated_files_name_the_file(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "notes.pth").write_text("not weights at all")
    np.savez(tmp_path / "arrays.npz", a=np.zeros(2))
    torch.save(_mmcv_checkpoint(), tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[:len(data) // 2])
    paddle_like = pickle.dumps({"w": np.zeros((4, 4), np.float32)}, protocol=4)
    (tmp_path / "cut.pdparams").write_bytes(paddle_like[:len(paddle_like) // 2])
    expected = {"empty.pth": "the weight file is empty",
                "notes.pth": "neither a PyTorch checkpoint nor a Paddle .pdparams",
                "arrays.npz": "a zip archive without data.pkl",
                "cut.pth": "a damaged or truncated zip archive",
                "cut.pdparams": "a damaged or truncated pickle",
                "missing.pth": "no such weight file"}
    for name, message in expected.items():
        with pytest.raises(UserError, match=message) as info:
            detect_checkpoint_kind(tmp_path / name)
        assert str(info.value).startswith(str(tmp_path / name)), name


def test_truncated_legacy_torch_file_is_one_error(tmp_path):
    torch.save(_mmcv_checkpoint(), tmp_path / "full.pth", _use_new_zipfile_serialization=False)
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[:len(data) // 2])
    assert detect_checkpoint_kind(tmp_path / "cut.pth") == "torch"
    with pytest.raises(UserError, match=r"cut\.pth (was refused|is not a readable)") as info:
        load_source_weights(tmp_path / "cut.pth")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("zip_format", [True, False], ids=["torch_zip", "plain_pickle"])
def test_pickles_needing_code_are_refused_and_never_run(tmp_path, zip_format):
    marker = tmp_path / "payload_ran"
    path = tmp_path / "hostile.pth"
    if zip_format:
        torch.save({"state_dict": {"w": torch.ones(1)}, "meta": CodePayload(str(marker))}, path)
    else:
        with open(path, "wb") as f:
            pickle.dump({"w": CodePayload(str(marker))}, f, protocol=2)
    with pytest.raises(UserError, match="refused") as info:
        load_source_weights(path)
    if not zip_format:  # told from the pickle's opcodes before anything is unpickled
        assert "the pickle references os.makedirs" in str(info.value)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_a_kind_the_exp_does_not_convert_is_named():
    check_source_kind("a.pth", "torch", ("torch",), "solo_exp")
    with pytest.raises(UserError, match=r"^a\.pth is a PyTorch checkpoint but paddle_exp converts "
                                        r"from Paddle \.pdparams files"):
        check_source_kind("a.pth", "torch", ("pdparams",), "paddle_exp")

"""Checkpoints: safe loading, strict weight loading with a readable report, atomic saving."""
import os
import pickle

import pytest
import torch
import torch.nn as nn

from mmdet_lite.utils.checkpoint import (
    load_checkpoint,
    load_weights,
    read_checkpoint,
    save_checkpoint,
)
from mmdet_lite.utils.errors import UserError


def _net(classes=3):
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, classes, 1))


class _Payload:
    """A pickle that would create a file when loaded without ``weights_only``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_dict_and_bare_state_dict_load_the_same(tmp_path):
    net = _net()
    save_checkpoint({"model": net.state_dict(), "epoch": 3}, tmp_path / "full.pth")
    save_checkpoint(net.state_dict(), tmp_path / "bare.pth")
    full, bare = load_checkpoint(tmp_path / "full.pth"), load_checkpoint(tmp_path / "bare.pth")
    assert full.keys() == bare.keys() == net.state_dict().keys()
    assert read_checkpoint(tmp_path / "full.pth")["epoch"] == 3
    other = _net()
    report = load_weights(other, tmp_path / "bare.pth")
    assert report.ok and len(report.loaded) == len(net.state_dict())
    for a, b in zip(net.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)


def test_ddp_prefix_is_removed(tmp_path):
    net = _net()
    save_checkpoint({"model": {f"module.{k}": v for k, v in net.state_dict().items()}},
                    tmp_path / "ddp.pth")
    assert load_checkpoint(tmp_path / "ddp.pth").keys() == net.state_dict().keys()


def test_missing_file_and_garbage_name_the_file(tmp_path):
    with pytest.raises(UserError, match=r"nothere\.pth does not exist"):
        load_checkpoint(tmp_path / "nothere.pth")
    junk = tmp_path / "junk.pth"
    for content in (b"hello", b"not a checkpoint", b"PK\x03\x04broken zip"):
        junk.write_bytes(content)
        with pytest.raises(UserError, match=r"junk\.pth (is not a readable PyTorch checkpoint|was "
                                            r"refused)") as err:
            load_checkpoint(junk)
        assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="is not a file"):
        load_checkpoint(tmp_path)


def test_hostile_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "payload_ran"
    for name, write in (("plain.pth", lambda f, o: pickle.dump(o, f)),
                        ("torch.pth", lambda f, o: torch.save(o, f))):
        path = tmp_path / name
        with open(path, "wb") as f:
            write(f, {"model": _Payload(str(marker))})
        with pytest.raises(UserError, match=rf"{name} was refused.*nothing in it ran") as err:
            load_checkpoint(path)
        assert "\n" not in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["model.pdparams", "model.pth"])
def test_pdparams_hint_comes_from_the_content(tmp_path, name):
    path = tmp_path / name
    with open(path, "wb") as f:
        pickle.dump({"w": __import__("numpy").zeros(3)}, f, protocol=2)
    with pytest.raises(UserError, match="a Paddle .pdparams: convert it first"):
        load_checkpoint(path)


def test_checkpoint_of_another_model_lists_the_problems(tmp_path):
    save_checkpoint({"model": _net(classes=5).state_dict()}, tmp_path / "five.pth")
    with pytest.raises(UserError) as err:
        load_weights(_net(classes=3), tmp_path / "five.pth")
    message = str(err.value)
    assert "five.pth does not fit the model" in message and "another model" not in message
    assert "2.weight: checkpoint (5, 4, 1, 1) vs model (3, 4, 1, 1)" in message
    assert "\n" not in message

    extra = dict(_net().state_dict(), **{"head.extra": torch.zeros(1)})
    del extra["0.weight"]
    with pytest.raises(UserError, match=r"1 missing from the checkpoint \(0\.weight\).*"
                                        r"1 unexpected \(head\.extra\)"):
        load_weights(_net(), extra)
    with pytest.raises(UserError, match="a checkpoint of another model"):
        load_weights(_net(), nn.Linear(2, 2).state_dict())


def test_non_strict_loads_what_fits():
    src, dst = _net(classes=5), _net(classes=3)
    report = load_weights(dst, src.state_dict(), strict=False)
    assert [k for k, _, _ in report.mismatched] == ["2.weight", "2.bias"]
    assert torch.equal(dst[0].weight, src[0].weight)
    assert not report.ok


def test_save_is_atomic_and_creates_folders(tmp_path, monkeypatch):
    path = tmp_path / "a" / "b" / "ckpt.pth"
    save_checkpoint({"model": _net().state_dict()}, path)
    assert path.is_file() and not path.with_name("ckpt.pth.tmp").exists()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    before = path.read_bytes()
    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(UserError, match="No space left"):
        save_checkpoint({"model": {}}, path)
    assert path.read_bytes() == before and not path.with_name("ckpt.pth.tmp").exists()


def test_unwritable_folder_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"in folder .*file/sub"):
        save_checkpoint({"model": {}}, blocker / "sub" / "ckpt.pth")

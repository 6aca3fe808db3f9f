"""``make demo``'s orchestration (tools/run_demo.py): the assets it regenerates, and the four tools
chained on a tiny generated set (one 96x96 epoch) down to the AP and the drawn pictures."""
import os

import numpy as np
import pytest

from mmdet_lite.core.shapes_demo import run_shapes_demo, write_demo_assets
from mmdet_lite.data.image_io import read_image
from mmdet_lite.data.synthetic import make_shapes_dataset
from mmdet_lite.utils.errors import UserError

from conftest import REPO_ROOT


def test_assets_are_the_generator_images(tmp_path):
    written = write_demo_assets(tmp_path)
    assert [p.name for p in written] == ["shapes_1.jpg", "shapes_2.jpg", "shapes_3.jpg"]
    for path in written:
        committed = REPO_ROOT / "assets" / path.name
        assert committed.stat().st_size < 60_000
        new, old = read_image(path).astype(np.float32), read_image(committed).astype(np.float32)
        assert new.shape == old.shape
        assert np.abs(new - old).mean() < 1.0  # equal up to the JPEG codec's version


def test_demo_trains_evaluates_and_draws(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data = make_shapes_dataset(tmp_path / "shapes", num_train=4, num_val=2, seed=3)
    assert all(len(data[s]["annotations"]) for s in ("train", "val"))
    result = run_shapes_demo(tmp_path / "shapes", tmp_path / "out", opts=[
        "train_batch_size", "2", "max_epoch", "1", "train_sizes", "[96]", "test_size", "96,96",
        "data_num_workers", "0"])
    assert 0.0 <= result["ap50_95"] <= result["ap50"] <= 1.0
    assert os.path.isfile(result["checkpoint"])
    assert sorted(os.listdir(result["pictures"])) == ["shapes_1.jpg", "shapes_2.jpg",
                                                      "shapes_3.jpg"]
    assert os.path.commonpath([result["pictures"], tmp_path / "out"]) == str(tmp_path / "out")
    out = capsys.readouterr().out
    assert "tools/train.py" in out and "Average Precision" in out and "results saved to" in out


def test_demo_names_the_failing_tool(tmp_path, capsys):
    make_shapes_dataset(tmp_path / "shapes", num_train=1, num_val=1, seed=0)
    with pytest.raises(UserError, match="train.py failed"):
        run_shapes_demo(tmp_path / "shapes", tmp_path / "out", opts=["no_such_key", "1"])
    assert "unknown exp key 'no_such_key'" in capsys.readouterr().out

"""tools/convert_weights.py and tools/demo.py logic on the tiny PicoDet."""
import pickle
import re

import cv2
import numpy as np
import pytest
import torch

from mmdet_lite.core.cli_args import convert_parser, demo_parser, parse_args
from mmdet_lite.core.convert_cli import run_convert
from mmdet_lite.core.demo import run_demo
from mmdet_lite.utils.checkpoint import load_checkpoint, load_weights
from mmdet_lite.utils.errors import UserError

from tiny_picodet import EXP_FILE, NUM_CLASSES, TSIZE, data_opts, make_dataset, separated_model


def _paddle_name(key, strip_backbone=False):
    """Our key under Paddle's naming: BatchNorm statistics as ``_mean`` / ``_variance``."""
    key = key.replace(".running_mean", "._mean").replace(".running_var", "._variance")
    return key[len("backbone."):] if strip_backbone else key


def _write_pdparams(path, state, strip_backbone=False):
    params = {_paddle_name(k, strip_backbone): v.numpy() for k, v in state.items()
              if not k.endswith("num_batches_tracked")}
    with open(path, "wb") as f:
        pickle.dump(params, f, protocol=2)


def _convert(*argv):
    argv = ["-f", str(EXP_FILE), *map(str, argv)]
    if "-nc" not in argv:
        argv += ["-nc", str(NUM_CLASSES)]
    return run_convert(parse_args(convert_parser(), argv))


def test_convert_round_trip_and_only_backbone(tmp_path, capsys):
    state = separated_model().state_dict()
    _write_pdparams(tmp_path / "full.pdparams", state)
    out = _convert("-c", tmp_path / "full.pdparams", "-oc", tmp_path / "out" / "full.pth")
    text = capsys.readouterr().out
    assert "unused Paddle keys: none" in text and "model keys not filled: none" in text
    model = separated_model(seed=1)
    load_weights(model, out)  # strict: every tensor is there
    for key, value in model.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(value, state[key]), key

    backbone = {k: v for k, v in state.items() if k.startswith("backbone.")}
    _write_pdparams(tmp_path / "lcnet.pdparams", backbone, strip_backbone=True)
    out = _convert("-c", tmp_path / "lcnet.pdparams", "-oc", tmp_path / "lcnet.pth",
                   "--only_backbone", "True")
    saved = load_checkpoint(out)
    assert saved.keys() == {k for k in backbone if not k.endswith("num_batches_tracked")}

    with pytest.raises(UserError, match="shape mismatch"):
        _convert("-c", tmp_path / "full.pdparams", "-oc", tmp_path / "x.pth", "-nc", 2)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(UserError, match="a_file"):
        _convert("-c", tmp_path / "full.pdparams", "-oc", tmp_path / "a_file" / "x.pth")
    with pytest.raises(SystemExit):
        _convert("-c", tmp_path / "full.pdparams", "-oc", tmp_path / "y.pth",
                 "--only_backbone", "maybe")


def test_demo_saves_drawn_images_and_videos(tmp_path, capsys, monkeypatch):
    data_dir = make_dataset(tmp_path / "shapes", num_val=2)
    ckpt = tmp_path / "tiny.pth"
    torch.save({"model": separated_model().state_dict()}, ckpt)
    common = ["-f", str(EXP_FILE), "-c", str(ckpt), "--tsize", str(TSIZE), "--conf", "0.3",
              "--device", "cpu", "--save_result"]
    opts = [*data_opts(data_dir), "output_dir", str(tmp_path / "out")]
    run_demo(parse_args(demo_parser(), ["image", *common, "--path", str(data_dir / "val"), *opts]))
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("results saved to ")
    save_dir = tmp_path / "out" / EXP_FILE.stem / "vis_res"
    drawn = sorted(save_dir.glob("*/*.jpg"))
    assert [p.name for p in drawn] == ["000001.jpg", "000002.jpg"]
    original = cv2.imread(str(data_dir / "val" / "000001.jpg"))
    assert np.abs(cv2.imread(str(drawn[0])).astype(int) - original).max() > 100

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (160, 120))
    for _ in range(3):
        writer.write(cv2.resize(original, (160, 120)))
    writer.release()
    capsys.readouterr()
    run_demo(parse_args(demo_parser(), ["video", *common, "--path", str(video), *opts]))
    assert re.search(r"3 frames in [0-9.]+s \([0-9.]+ FPS", capsys.readouterr().err)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    no_save = [a for a in common if a != "--save_result"]
    run_demo(parse_args(demo_parser(), ["video", *no_save, "--path", str(video), *opts]))
    assert "neither shown nor saved (pass --save_result" in capsys.readouterr().err
    saved = sorted(save_dir.glob("*/clip.mp4"))
    assert saved
    cap = cv2.VideoCapture(str(saved[-1]))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    cap.release()
    with pytest.raises(UserError, match="no such file or folder"):
        run_demo(parse_args(demo_parser(), ["image", *common, "--path", str(tmp_path / "none")]))


def test_demo_results_go_to_the_training_folder_of_the_checkpoint(tmp_path, capsys, monkeypatch):
    data_dir = make_dataset(tmp_path / "shapes", num_val=1)
    run_dir = tmp_path / "run" / EXP_FILE.stem
    run_dir.mkdir(parents=True)
    (run_dir / "train_log.txt").write_text("")
    torch.save({"model": separated_model().state_dict()}, run_dir / "best_ckpt.pth")
    monkeypatch.chdir(tmp_path)
    run_demo(parse_args(demo_parser(), [
        "image", "-f", str(EXP_FILE), "-c", str(run_dir / "best_ckpt.pth"), "--tsize", str(TSIZE),
        "--device", "cpu", "--save_result", "--path", str(data_dir / "val"),
        *data_opts(data_dir)]))
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith(
        f"results saved to {run_dir / 'vis_res'}")
    assert [p.name for p in (run_dir / "vis_res").glob("*/*.jpg")] == ["000001.jpg"]
    assert not (tmp_path / "outputs").exists()

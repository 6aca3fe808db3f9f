"""tools/eval.py logic: twelve COCO lines, bbox.json, and -d 2 on CPU equal to -d 1."""
import json

from mmdet_lite.core.cli_args import eval_parser, parse_args
from mmdet_lite.core.evaluate import eval_exp, run_eval
from mmdet_lite.exp.picodet_base import PicoDetExp

from conftest import assert_same_coco_detections
from tiny_picodet import EXP_FILE, TSIZE, data_opts, make_dataset, write_checkpoint


def _run(tmp, data_dir, ckpt, devices, name):
    argv = ["-f", str(EXP_FILE), "-c", str(ckpt), "-d", str(devices), "-b", "2", "-w", "0",
            "--tsize", str(TSIZE), "--device", "cpu", "--conf", "0.05", "--nms", "0.5",
            *data_opts(data_dir), "output_dir", str(tmp / name)]
    run_eval(parse_args(eval_parser(), argv))
    save_dir = tmp / name / EXP_FILE.stem
    dets = json.loads((save_dir / "bbox.json").read_text())
    log = (save_dir / "eval_log.txt").read_text().splitlines()
    stats = [line.split("|", 2)[-1] if line.count("|") > 3 else line for line in log
             if "Average Precision" in line or "Average Recall" in line]
    return dets, stats


def test_two_cpu_processes_give_the_same_results(tmp_path, capsys):
    data_dir = make_dataset(tmp_path / "shapes", num_val=5)
    ckpt = write_checkpoint(tmp_path / "tiny.pth")
    dets1, stats1 = _run(tmp_path, data_dir, ckpt, 1, "one")
    out = capsys.readouterr().out
    assert "detections written to" in out and "bbox.json" in out
    assert len(stats1) == 12
    assert {d["image_id"] for d in dets1} == {1, 2, 3, 4, 5}
    assert min(d["score"] for d in dets1) > 0.05
    dets2, stats2 = _run(tmp_path, data_dir, ckpt, 2, "two")
    assert stats2 == stats1

    assert_same_coco_detections(dets2, dets1)


def test_conf_and_nms_are_set_through_the_exp(monkeypatch):
    argv = ["-f", str(EXP_FILE), "-c", "unused.pth", "--conf", "0.2", "--nms", "0.45"]
    exp = eval_exp(parse_args(eval_parser(), argv))
    assert exp.get_score_threshold() == 0.2
    assert exp.head["nms"]["score_threshold"] == 0.2 and exp.head["nms"]["nms_threshold"] == 0.45
    assert exp.get_model().head.nms["nms_threshold"] == 0.45
    calls = []  # every load of the exp file makes a new Exp class: patch the family base
    monkeypatch.setattr(PicoDetExp, "set_score_threshold", lambda _, v: calls.append(("conf", v)))
    monkeypatch.setattr(PicoDetExp, "set_nms_threshold", lambda _, v: calls.append(("nms", v)))
    exp = eval_exp(parse_args(eval_parser(), argv))
    assert calls == [("conf", 0.2), ("nms", 0.45)]
    assert exp.head["nms"]["score_threshold"] == 0.025  # only the exp's methods set it

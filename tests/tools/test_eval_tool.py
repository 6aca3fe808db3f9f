"""tools/eval.py logic: twelve COCO lines, bbox.json, and -d 2 on CPU equal to -d 1."""
import json

from conftest import assert_same_coco_detections
from tiny_picodet import EXP_FILE, TSIZE, data_opts, make_dataset, write_checkpoint

from mmdet_lite.core.cli_args import eval_parser, parse_args
from mmdet_lite.core.evaluate import run_eval


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

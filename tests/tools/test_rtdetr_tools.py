"""RT-DETR through the tools PicoDet uses (same code paths): convert_weights, eval (-d 1 and -d 2),
Predictor, demo, and user mistakes reported as one line with exit code 2 (export_onnx:
``test_rtdetr_export_onnx.py``).

RT-DETR-R18vd with 5 classes at test size 160 on a generated shapes dataset (``tiny_rtdetr``);
random weights whose class heads are spread out so that scores are well separated (a DETR's top-k
would otherwise flip on rounding differences). Paddle checkpoints are random arrays under the names
and shapes that ppdet develop saves (``tests/fixtures/rtdetr/*.json.gz``), pickled like a
``.pdparams``.
"""
import gzip
import json
import pickle

import numpy as np
import pytest
import torch

from mmdet_lite.core.cli_args import convert_parser, demo_parser, eval_parser, parse_args
from mmdet_lite.core.convert_cli import run_convert
from mmdet_lite.core.demo import run_demo
from mmdet_lite.core.evaluate import run_eval
from mmdet_lite.core.predictor import Predictor
from mmdet_lite.data.image_io import read_image
from mmdet_lite.data.synthetic import SHAPE_CATEGORIES, make_shapes_dataset
from mmdet_lite.exp import get_exp
from mmdet_lite.utils.checkpoint import load_checkpoint, load_weights, save_checkpoint
from mmdet_lite.utils.errors import UserError

from conftest import assert_same_coco_detections, start_tool
from tiny_rtdetr import EXP_FILE, NUM_CLASSES, REPO_ROOT, TOP, TSIZE, rtdetr_exp, separated_model

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "rtdetr"
NUM_VAL = 3


def _data_opts(data_dir, ann="annotations/val.json"):
    return ["num_classes", str(NUM_CLASSES), "data_dir", str(data_dir), "val_ann", ann,
            "val_image_folder", "val"]


def _paddle_params(shapes, num_classes=80, dtype=np.float32, seed=0):
    """Random arrays under Paddle's names; class dimensions (80 in the fixtures) resized."""
    rng = np.random.default_rng(seed)
    params = {}
    for key, shape in shapes.items():
        if "score_head" in key or "denoising_class_embed" in key:
            shape = [num_classes if d == 80 else d for d in shape]
        params[key] = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(dtype)
    return params


def _write_pickle(path, params):
    with open(path, "wb") as f:
        pickle.dump(params, f, protocol=2)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rtdetr_tools")
    data_dir = tmp / "shapes"
    make_shapes_dataset(data_dir, num_train=0, num_val=NUM_VAL, seed=0)
    coco = json.loads((data_dir / "annotations" / "val.json").read_text())
    for ann in coco["annotations"]:
        ann["iscrowd"] = 1
    (data_dir / "annotations" / "crowd.json").write_text(json.dumps(coco))
    ckpt = save_checkpoint({"model": separated_model().state_dict()}, tmp / "r18vd.pth")
    return tmp, data_dir, ckpt


@pytest.fixture(scope="module")
def paddle_files(setup):
    """Paddle-style files: R18vd COCO (80 classes), R50vd COCO (float16 to keep it small: only
    names and shapes matter there), the ImageNet ResNet18-vd (no ``backbone.`` prefix, a
    classifier ``fc``)."""
    tmp = setup[0]
    with gzip.open(FIXTURES / "paddle_rtdetr_keys.json.gz", "rt") as f:
        detector = json.load(f)
    with gzip.open(FIXTURES / "paddle_backbone_keys.json.gz", "rt") as f:
        backbones = json.load(f)
    r18 = _paddle_params({**backbones["resnet18_vd"], **detector["r18vd"]})
    imagenet = {k[len("backbone."):]: v for k, v in r18.items() if k.startswith("backbone.")}
    imagenet.update(_paddle_params({"fc.weight": [512, 1000], "fc.bias": [1000]}))
    r50 = _paddle_params({**backbones["resnet50_vd"], **detector["r50vd"]}, dtype=np.float16)
    return dict(r18=_write_pickle(tmp / "rtdetr_r18vd_6x_coco.pdparams", r18), r18_params=r18,
                imagenet=_write_pickle(tmp / "ResNet18_vd_pretrained.pdparams", imagenet),
                r50=_write_pickle(tmp / "rtdetr_r50vd_6x_coco.pdparams", r50))


def _convert(*argv):
    return run_convert(parse_args(convert_parser(), ["-f", str(EXP_FILE), *map(str, argv)]))


def test_convert_weights_class_count_variant_and_backbone(setup, paddle_files, capsys):
    tmp = setup[0]
    out = _convert("-c", paddle_files["r18"], "-oc", tmp / "coco80.pth", "-nc", 80)
    text = capsys.readouterr().out
    assert "unused Paddle keys: none" in text and "model keys not filled: none" in text
    model = get_exp(str(EXP_FILE)).get_model()  # num_classes 80
    load_weights(model, out)  # strict
    params = paddle_files["r18_params"]
    assert torch.equal(model.decoder.dec_score_head[2].weight,
                       torch.from_numpy(params["transformer.dec_score_head.2.weight"]).T)
    assert torch.equal(model.decoder.denoising_class_embed.weight,
                       torch.from_numpy(params["transformer.denoising_class_embed.weight"]))
    assert torch.equal(model.backbone.res5[1].branch2b.bn.running_var,
                       torch.from_numpy(params["backbone.res5.res5b.branch2b.norm._variance"]))

    # -nc changes the class count of every class tensor; a mismatch names one and the right -nc.
    with pytest.raises(UserError) as err:
        _convert("-c", paddle_files["r18"], "-oc", tmp / "x.pth", "-nc", NUM_CLASSES)
    message = str(err.value)
    assert "\n" not in message and "rtdetr_r18vd_6x_coco.pdparams: shape mismatch for" in message
    assert "(and 8 more)" in message  # enc + 3 decoder score heads (weight, bias), dn embedding
    assert "(80," in message and "(5," in message and message.endswith(
        "pass -nc 80 (the checkpoint's number of classes)")

    with pytest.raises(UserError) as err:
        _convert("-c", paddle_files["r50"], "-oc", tmp / "x.pth", "-nc", 80)
    message = str(err.value)
    assert "\n" not in message
    assert "rtdetr_r50vd_6x_coco.pdparams is a checkpoint of another model" in message

    backbone_out = _convert("-c", paddle_files["imagenet"], "-oc", tmp / "backbone.pth", "-nc",
                            NUM_CLASSES, "--only_backbone", "True")
    saved = load_checkpoint(backbone_out)
    expected = {k for k in rtdetr_exp().get_model().state_dict()
                if k.startswith("backbone.") and not k.endswith("num_batches_tracked")}
    assert set(saved) == expected
    assert torch.equal(saved["backbone.conv1.conv1_1.conv.weight"],
                       torch.from_numpy(params["backbone.conv1.conv1_1.conv.weight"]))
    with pytest.raises(UserError, match="holds the backbone only.*--only_backbone True"):
        _convert("-c", paddle_files["imagenet"], "-oc", tmp / "x.pth", "-nc", NUM_CLASSES)


def _eval(tmp, data_dir, ckpt, devices, batch, name, ann="annotations/val.json"):
    argv = ["-f", str(EXP_FILE), "-c", str(ckpt), "-d", str(devices), "-b", str(batch), "-w", "0",
            "--tsize", str(TSIZE), "--device", "cpu", *_data_opts(data_dir, ann),
            "output_dir", str(tmp / name)]
    run_eval(parse_args(eval_parser(), argv))
    save_dir = tmp / name / EXP_FILE.stem
    log = (save_dir / "eval_log.txt").read_text()
    stats = [line.split("|", 2)[-1] if line.count("|") > 3 else line for line in log.splitlines()
             if "Average Precision" in line or "Average Recall" in line]
    return json.loads((save_dir / "bbox.json").read_text()), stats, log


def test_eval_on_two_processes_equals_one_and_predictor_agrees(setup):
    tmp, data_dir, ckpt = setup
    dets1, stats1, _ = _eval(tmp, data_dir, ckpt, 1, 1, "one")
    dets2, stats2, _ = _eval(tmp, data_dir, ckpt, 2, 2, "two")  # one image per process batch
    assert len(stats1) == 12 and stats2 == stats1

    def key(d):
        return d["image_id"], d["category_id"], -d["score"], d["bbox"]

    assert_same_coco_detections(dets2, dets1)
    assert len(dets1) == NUM_VAL * TOP
    assert {d["category_id"] for d in dets1} <= {cid for cid, _ in SHAPE_CATEGORIES}

    # The Predictor (the demo's engine) gives the evaluator's detections of the same image.
    predictor = Predictor(str(EXP_FILE), ckpt, device="cpu", conf=0.0, tsize=TSIZE, clip=False,
                          num_classes=NUM_CLASSES, data_dir=str(data_dir),
                          val_ann="annotations/val.json")
    result = predictor(str(data_dir / "val" / "000002.jpg"))
    assert len(result) == TOP and result.names == [name for _, name in SHAPE_CATEGORIES]
    mine = sorted(key(dict(image_id=2, category_id=SHAPE_CATEGORIES[label][0], score=float(s),
                           bbox=[float(x1), float(y1), float(x2) - float(x1),
                                 float(y2) - float(y1)]))
                  for (x1, y1, x2, y2), s, label in zip(result.boxes, result.scores, result.labels))
    assert mine == sorted(key(d) for d in dets1 if d["image_id"] == 2)
    h, w = read_image(data_dir / "val" / "000002.jpg").shape[:2]
    assert 0.5 * w < result.boxes[:, 2].max() <= 1.05 * w  # original pixels, not input pixels
    predictor.conf = float(np.median(result.scores))  # ``conf`` keeps the scores above it
    kept = predictor(str(data_dir / "val" / "000002.jpg"))
    assert 0 < len(kept) == (result.scores >= predictor.conf).sum() < TOP


def test_eval_of_crowd_only_annotations_is_zero_with_a_warning(setup):
    tmp, data_dir, ckpt = setup
    dets, stats, log = _eval(tmp, data_dir, ckpt, 1, 2, "crowd", ann="annotations/crowd.json")
    assert len(dets) == NUM_VAL * TOP
    assert len(stats) == 12 and all(line.endswith("= 0.000") for line in stats)
    assert "no ground-truth box to match (no annotation, or only crowd ones)" in log
    exp = rtdetr_exp("data_dir", str(data_dir), "train_ann", "annotations/crowd.json",
               "train_image_folder", "val")
    with pytest.raises(UserError, match="no image with ground-truth boxes"):
        exp.get_train_loader(batch_size=2, num_workers=0)


def test_demo_draws_rtdetr_detections(setup, capsys):
    tmp, data_dir, ckpt = setup
    argv = ["image", "-f", str(EXP_FILE), "-c", str(ckpt), "--path", str(data_dir / "val"),
            "--tsize", str(TSIZE), "--conf", "0.3", "--device", "cpu", "--save_result",
            *_data_opts(data_dir), "output_dir", str(tmp / "demo")]
    run_demo(parse_args(demo_parser(), argv))
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("results saved to ")
    drawn = sorted((tmp / "demo" / EXP_FILE.stem / "vis_res").glob("*/*.jpg"))
    assert [p.name for p in drawn] == [f"{i:06d}.jpg" for i in range(1, NUM_VAL + 1)]


def _one_line_error(proc):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_user_errors_are_one_line(setup, paddle_files):
    tmp, data_dir, ckpt = setup
    # An R50-vd checkpoint (this project's format) for the R18-vd exp. Only names and shapes
    # matter: zero-stride views keep the file tiny.
    with torch.device("meta"):
        r50 = get_exp(str(REPO_ROOT / "exps" / "rtdetr" / "rtdetr_r50vd_6x_coco.py")).get_model()
    other = save_checkpoint({"model": {k: torch.zeros((), dtype=v.dtype).expand(v.shape)
                                       for k, v in r50.state_dict().items()}}, tmp / "r50vd.pth")
    common = ["-f", EXP_FILE, "--tsize", TSIZE, "--device", "cpu", *_data_opts(data_dir)]
    procs = {
        "variant": start_tool("eval.py", "-c", other, *common, cwd=tmp),
        "classes": start_tool("convert_weights.py", "-f", EXP_FILE, "-c", paddle_files["r18"],
                          "-oc", tmp / "nc.pth", "-nc", NUM_CLASSES, cwd=tmp),
    }
    line = _one_line_error(procs["variant"])
    assert f"checkpoint {other} does not fit the model -- a checkpoint of another model" in line
    line = _one_line_error(procs["classes"])
    assert "rtdetr_r18vd_6x_coco.pdparams: shape mismatch for" in line
    assert line.endswith("pass -nc 80 (the checkpoint's number of classes)")
    with pytest.raises(UserError) as err:
        run_eval(parse_args(eval_parser(), ["-f", str(EXP_FILE), "-c", str(ckpt), "--conf", "0.3",
                                            *map(str, common[2:])]))
    assert str(err.value) == ("--conf: rtdetr_r18vd_6x_coco has no score threshold to set (its "
                              "post-processing has no NMS); drop --conf")
    with pytest.raises(UserError) as err:
        run_eval(parse_args(eval_parser(), ["-f", str(EXP_FILE), "-c", str(ckpt), "--nms", "0.5",
                                            *map(str, common[2:])]))
    assert str(err.value) == ("--nms: rtdetr_r18vd_6x_coco has no NMS IoU threshold to set (its "
                              "post-processing has no NMS); drop --nms")
    with pytest.raises(UserError, match=r"test_size \(200, 200\): RT-DETR needs .* by 32"):
        Predictor(str(EXP_FILE), ckpt, tsize=200, num_classes=NUM_CLASSES)

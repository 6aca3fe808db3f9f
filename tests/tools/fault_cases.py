"""The fault-injection table of ``test_fault_suite.py``: one user mistake (or odd but valid
input) per row, the tool it is given to, and what the user must see. README.md's
"Troubleshooting" table lists the same rows with the message each gets."""
import json
from pathlib import Path

import cv2
import numpy as np

from mmdet_lite.data.synthetic import make_shapes_dataset

from tiny_picodet import EXP_FILE, NUM_CLASSES, TSIZE, write_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
RTDETR = REPO_ROOT / "exps/rtdetr/rtdetr_r18vd_6x_coco.py"
class Succeeds(str):
    """The row must succeed (exit 0), and its stderr hold this text (may be empty)."""


OK = Succeeds("")


class Workspace:
    """The files the rows need, made once in ``root``: a tiny checkpoint, a 4+2-image shapes
    set and broken variants of its files."""

    def __init__(self, root, create=True):
        self.root = root = Path(root)
        self.ckpt = root / "tiny.pth"
        if create:
            self._create()

    def _create(self):
        root = self.root
        make_shapes_dataset(root / "d", num_train=4, num_val=2, seed=3)
        write_checkpoint(self.ckpt)
        self.val = json.loads((root / "d/annotations/val.json").read_text())
        (root / "syntax.py").write_text("from mmdet_lite.exp import PicoDetExp\nclass Exp(:\n")
        (root / "noexp.py").write_text("x = 1\n")
        (root / "badimport.py").write_text("import no_such_module_here\n")
        raw = self.ckpt.read_bytes()
        (root / "trunc.pth").write_bytes(raw[: len(raw) // 2])
        (root / "trunc.pdparams").write_bytes(b"\x80\x04\x95" + b"\x00" * 40)
        (root / "nonjson.json").write_text("{not json")
        (root / "afile").write_text("")
        self.ann("empty.json", lambda d: d.update(images=[], annotations=[]))
        self.ann("neg.json", lambda d: d["annotations"][0].update(bbox=[10, 10, -5, 8]))
        self.ann("badcat.json", lambda d: d["annotations"][0].update(category_id=99))
        self.ann("missimg.json", lambda d: d["images"][0].update(file_name="nope.jpg"))
        self.ann("dupid.json", lambda d: d["images"][1].update(id=d["images"][0]["id"]))
        self.ann("noimages.json", lambda d: d.pop("images"))
        self._odd_images()

    def ann(self, name, mutate):
        data = json.loads(json.dumps(self.val))
        mutate(data)
        (self.root / name).write_text(json.dumps(data))

    def _odd_images(self):
        """Valid images of unusual kinds: 1x1, large, grayscale, RGBA, 16-bit."""
        rng = np.random.default_rng(0)
        images = {"one.png": np.zeros((1, 1, 3), np.uint8),
                  "large.jpg": rng.integers(0, 255, (3000, 4000, 3), dtype=np.uint8),
                  "gray.png": rng.integers(0, 255, (120, 160), dtype=np.uint8),
                  "rgba.png": rng.integers(0, 255, (120, 160, 4), dtype=np.uint8),
                  "deep.png": rng.integers(0, 65535, (120, 160, 3), dtype=np.uint16)}
        (self.root / "odd").mkdir()
        for name, image in images.items():
            cv2.imwrite(str(self.root / "odd" / name), image)
        infos = [dict(id=i + 1, file_name=name, width=im.shape[1], height=im.shape[0])
                 for i, (name, im) in enumerate(images.items())]
        (self.root / "odd.json").write_text(json.dumps(
            dict(images=infos, annotations=[], categories=self.val["categories"])))

    def data(self, ann="d/annotations/val.json", folder="d/val"):
        return ["num_classes", NUM_CLASSES, "data_dir", self.root, "val_ann", self.root / ann,
                "val_image_folder", self.root / folder]

    def train_data(self, ann="d/annotations/train.json"):
        return ["num_classes", NUM_CLASSES, "data_dir", self.root, "train_ann", self.root / ann,
                "train_image_folder", self.root / "d/train", "output_dir", self.root / "out"]

    def eval(self, *args, ckpt=None):
        return ("eval.py", "-f", EXP_FILE, "-c", ckpt or self.ckpt, "--device", "cpu", "-w", 0,
                "--tsize", TSIZE, *args)

    def train(self, *args, exp=EXP_FILE):
        return ("train.py", "-f", exp, "--device", "cpu", "-w", 0, *args)


def row_names():
    """The row ids, without making any file."""
    return list(rows(Workspace("/nonexistent", create=False)))


def rows(ws):
    """``{row id: (command, expected)}``: ``expected`` is a substring of the one ``error:`` line,
    or a ``Succeeds``."""
    r = ws.root
    return {
        "exp file missing": (ws.train("-f", r / "none.py"), "exp file not found"),
        "syntax error in the exp file": (ws.train("-f", r / "syntax.py"),
                                         "syntax.py, line 2: invalid syntax"),
        "exp file without class Exp": (ws.train("-f", r / "noexp.py"), "must define `class Exp`"),
        "exp file importing a missing module": (ws.train("-f", r / "badimport.py"),
                                                "no_such_module_here"),
        "KEY without VALUE": (ws.eval(*ws.data(), "max_epoch"), "must be KEY VALUE pairs"),
        "unknown KEY": (ws.eval(*ws.data(), "num_clases", 5), "unknown exp key 'num_clases'"),
        "value of the wrong type": (ws.eval(*ws.data(), "max_epoch", "abc"),
                                    "bad value for exp key 'max_epoch': 'abc'"),
        "misspelt flag": (ws.eval("--devce", "cpu"), "unrecognized arguments: --devce"),
        "negative batch": (ws.train("-b", -2), "-b/--batch-size: expected a positive integer"),
        "batch not divisible by processes": (ws.train("-b", 3, "-d", 2),
                                             "-b 3 is not a multiple of the 2 processes"),
        "more CPU processes than cores": (ws.train("-d", 512), "-d 512: this machine has"),
        "--device gpu without a GPU": (ws.eval("--device", "gpu"), "no CUDA GPU is available"),
        "max_epoch 0": (ws.train(*ws.train_data(), "max_epoch", 0), "max_epoch 0: training"),
        "--resume with nothing to resume": (ws.train("--resume", "output_dir", r / "empty"),
                                            "--resume: no run of"),
        "checkpoint missing": (ws.eval(*ws.data(), ckpt=r / "none.pth"), "does not exist"),
        "truncated .pth": (ws.eval(*ws.data(), ckpt=r / "trunc.pth"),
                           "trunc.pth is not a readable PyTorch checkpoint"),
        "annotation file missing": (ws.eval(*ws.data("none.json")), "annotation file not found"),
        "annotations not JSON": (ws.eval(*ws.data("nonjson.json")), "is not valid JSON"),
        "annotations without images": (ws.eval(*ws.data("noimages.json")),
                                       "has no 'images' list"),
        "no usable training image": (ws.train(*ws.train_data("empty.json")),
                                     "has no image with ground-truth boxes"),
        "category id not in categories": (ws.eval(*ws.data("badcat.json")),
                                          "category_id 99, which is not in 'categories'"),
        "duplicate image ids": (ws.eval(*ws.data("dupid.json")),
                                "is used by more than one image"),
        "image referenced but missing": (ws.eval(*ws.data("missimg.json")),
                                         "image file not found"),
        "image folder missing": (ws.eval(*ws.data(folder="nofolder")), "image file not found"),
        "num_classes differs from the annotations": (
            ws.eval(*ws.data(), "num_classes", 7), "made for another number of classes"),
        "box with negative size (ignored, warned)": (
            ws.eval(*ws.data("neg.json")),
            Succeeds("1 annotation(s) with an empty or negative box are ignored")),
        "1x1, large, grayscale, RGBA, 16-bit images": (ws.eval(*ws.data("odd.json", "odd")), OK),
        "output_dir under a regular file": (ws.eval(*ws.data(), "output_dir", r / "afile" / "o"),
                                            "cannot create output folder"),
        "demo --path missing": (("demo.py", "image", "-f", EXP_FILE, "-c", ws.ckpt, "--device",
                                 "cpu", "--path", r / "none.jpg", "num_classes", NUM_CLASSES),
                                "no such file or folder"),
        "demo video that is not a video": (("demo.py", "video", "-f", EXP_FILE, "-c", ws.ckpt,
                                            "--device", "cpu", "--path", r / "nonjson.json",
                                            "num_classes", NUM_CLASSES),
                                           "cannot open video file"),
        "convert a truncated .pdparams": (("convert_weights.py", "-f", EXP_FILE, "-c",
                                           r / "trunc.pdparams", "-oc", r / "o.pth"),
                                          "trunc.pdparams"),
        "convert a JSON file": (("convert_weights.py", "-f", EXP_FILE, "-c", r / "nonjson.json",
                                 "-oc", r / "o.pth"), "nonjson.json"),
        "export at too low an opset": (("export_onnx.py", "-f", RTDETR, "-c", ws.ckpt,
                                        "--opset", 11), "needs opset 16 or newer"),
        "export --check-image missing": (("export_onnx.py", "-f", EXP_FILE, "-c", ws.ckpt,
                                          "--output-name", r / "m.onnx", "--check-image",
                                          r / "none.jpg", "num_classes", NUM_CLASSES),
                                         "none.jpg"),
    }

"""A tiny PicoDet for the tool tests: picodet_xs_320 with 5 classes at test size 160, weights chosen
so that scores are well separated (no NMS ties), plus a generated shapes dataset."""
from pathlib import Path

import torch

from mmdet_lite.data.synthetic import SHAPE_CATEGORIES, make_shapes_dataset
from mmdet_lite.exp import get_exp
from mmdet_lite.utils.checkpoint import save_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
EXP_FILE = REPO_ROOT / "exps" / "picodet" / "picodet_xs_320_coco_lcnet.py"
TSIZE = 160
NUM_CLASSES = len(SHAPE_CATEGORIES)


def data_opts(data_dir):
    """KEY VALUE overrides pointing an exp at the shapes dataset in ``data_dir``."""
    return ["num_classes", str(NUM_CLASSES), "data_dir", str(data_dir), "val_ann",
            "annotations/val.json", "val_image_folder", "val"]


def make_dataset(root, num_val=6):
    make_shapes_dataset(root, num_train=0, num_val=num_val, seed=0)
    return Path(root)


def tiny_exp(*opts):
    exp = get_exp(str(EXP_FILE))
    exp.merge(["num_classes", str(NUM_CLASSES), "test_size", f"{TSIZE},{TSIZE}", *opts])
    return exp


def separated_model(seed=0):
    """The tiny model in eval mode with random head weights that spread the scores."""
    gen = torch.Generator().manual_seed(seed)
    model = tiny_exp().get_model()
    with torch.no_grad():
        for name, param in model.head.named_parameters():
            if name.startswith("head_cls") or name.startswith("head_reg"):
                std = 0.5 if name.endswith("weight") else 1.0
                shift = 1.0 if name.startswith("head_cls") and name.endswith("bias") else 0.0
                param.copy_(torch.randn(param.shape, generator=gen) * std - shift)
    return model.eval()


def write_checkpoint(path, seed=0, bare=False):
    model = separated_model(seed)
    state = model.state_dict()
    save_checkpoint(state if bare else {"model": state}, path)
    return Path(path)

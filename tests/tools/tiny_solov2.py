"""A tiny SOLOv2 for the tool tests: solov2_r50_fpn_1x_coco reduced as in
``tests/test_training_solov2.py`` (ResNet-18 variant b, 64-channel FPN and towers, 32 kernel
channels, 5 classes, test size 128x160), random weights whose category conv is biased so that
every cell is a candidate (scores ~0.7), saved as a checkpoint; and a variant with spread scores
and masks (``spread_model``), with DCNv2 as the enhance model (``DCN_EXP_FILE``, ``DCN_OPTS``)."""
from pathlib import Path

import torch

from mmdet_lite.data.synthetic import SHAPE_CATEGORIES
from mmdet_lite.exp import get_exp
from mmdet_lite.utils.checkpoint import save_checkpoint

from training_helpers import TINY_SOLOV2

REPO_ROOT = Path(__file__).resolve().parents[2]
EXP_FILE = REPO_ROOT / "exps" / "solov2" / "solov2_r50_fpn_1x_coco.py"
DCN_EXP_FILE = REPO_ROOT / "exps" / "solov2" / "solov2_r50_enhance_coco.py"
DCN_OPTS = ["head.dcn_v2_stages", "[1]"]
"""With ``TINY``, make ``DCN_EXP_FILE`` a tiny enhance model: DCNv2 in res3..res5, in the second
tower conv of the head and in the mask-feature tower."""
NUM_CLASSES = len(SHAPE_CATEGORIES)
TINY = [*TINY_SOLOV2, "num_classes", NUM_CLASSES]
"""KEY VALUE overrides of ``EXP_FILE`` that make the tiny model."""


def tiny_opts(*extra):
    """``TINY`` plus ``extra`` KEY VALUE pairs, as strings (for ``exp.merge`` or a command line)."""
    return [str(v) for v in (*TINY, *extra)]


def solov2_exp(*extra, exp_file=EXP_FILE):
    exp = get_exp(str(exp_file))
    exp.merge(tiny_opts(*extra))
    return exp


def detecting_checkpoint(path, seed=0):
    """Save the tiny model's random weights with ``solo_cate`` biased to +1 (sigmoid 0.73) to
    ``path``; returns the path."""
    torch.manual_seed(seed)
    model = solov2_exp().get_model()
    with torch.no_grad():
        model.head.solo_cate.bias.fill_(1.0)
    return save_checkpoint({"model": model.state_dict()}, path)


def spread_model(exp, seed=0, offset_std=0.0):
    """``exp``'s model in eval mode with random weights whose category conv spreads the scores
    (about 0.1 .. 0.9 on the shapes images: hundreds of candidates, scores apart) and whose kernel
    conv gives masks of varied sizes; DCN offset convs get weights of std ``offset_std`` (0.05:
    offsets of several pixels)."""
    torch.manual_seed(seed)
    model = exp.get_model().eval()
    with torch.no_grad():
        torch.nn.init.normal_(model.head.solo_cate.weight, std=0.1)
        model.head.solo_cate.bias.fill_(-2.0)
        torch.nn.init.normal_(model.head.solo_kernel.weight, std=0.1)
        for module in model.modules():
            if hasattr(module, "conv_offset"):
                torch.nn.init.normal_(module.conv_offset.weight, std=offset_std)
    return model

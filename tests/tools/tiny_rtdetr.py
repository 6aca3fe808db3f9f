"""A tiny RT-DETR for the tool tests: RT-DETR-R18vd with 5 classes at test size 160, random weights
whose class heads spread the scores and whose box heads move the boxes off the anchors, plus the
shapes dataset's validation images."""
from pathlib import Path

import numpy as np
import torch

from mmdet_lite.data.image_io import read_image
from mmdet_lite.data.synthetic import SHAPE_CATEGORIES
from mmdet_lite.exp import get_exp

REPO_ROOT = Path(__file__).resolve().parents[2]
EXP_FILE = REPO_ROOT / "exps" / "rtdetr" / "rtdetr_r18vd_6x_coco.py"
TSIZE = 160
NUM_CLASSES = len(SHAPE_CATEGORIES)
TOP = 300  # num_top_queries: every image gets 300 detections, as in Paddle


def rtdetr_exp(*opts):
    """The tiny exp, with extra KEY VALUE overrides."""
    exp = get_exp(str(EXP_FILE))
    exp.merge(["num_classes", str(NUM_CLASSES), "test_size", f"{TSIZE},{TSIZE}", *opts])
    return exp


def separated_model(seed=0):
    """The tiny exp's model (eval mode) with class heads that spread the scores and box heads that
    move the boxes off the anchors."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = rtdetr_exp().get_model()
    decoder = model.decoder
    with torch.no_grad():
        for head in (decoder.enc_score_head, *decoder.dec_score_head):
            head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * 0.1)
            head.bias.copy_(torch.randn(head.bias.shape, generator=gen) - 1.0)
        for mlp in (decoder.enc_bbox_head, *decoder.dec_bbox_head):
            mlp.layers[-1].weight.copy_(torch.randn(mlp.layers[-1].weight.shape, generator=gen)
                                        * 0.01)
    return model.eval()


def val_images(data_dir):
    """The validation images of the shapes dataset in ``data_dir`` through the exp's test
    transform: (N, 3, TSIZE, TSIZE) float32 0..255."""
    transform = rtdetr_exp().get_test_transform()
    chw = [transform(read_image(p))[0] for p in sorted((Path(data_dir) / "val").glob("*.jpg"))]
    return torch.from_numpy(np.stack(chw)).float()

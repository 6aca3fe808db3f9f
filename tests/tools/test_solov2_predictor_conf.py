"""``Predictor(conf=)`` for SOLOv2 as for the box families: every instance scoring at least
``conf`` comes back, also below the head's candidate threshold (0.1) and Matrix NMS's update
threshold (0.05); a ``conf`` above them only filters."""
import numpy as np
import pytest
import torch

from mmdet_lite.core.predictor import Predictor
from mmdet_lite.utils.checkpoint import save_checkpoint

from tiny_solov2 import EXP_FILE, solov2_exp, tiny_opts


@pytest.fixture(scope="module")
def low_score_ckpt(tmp_path_factory):
    """The tiny model with category scores near 0.08 (``solo_cate`` bias logit(0.08))."""
    torch.manual_seed(0)
    model = solov2_exp().get_model()
    with torch.no_grad():
        model.head.solo_cate.bias.fill_(float(np.log(0.08 / 0.92)))
    path = tmp_path_factory.mktemp("solov2_conf") / "low_scores.pth"
    return save_checkpoint({"model": model.state_dict()}, path)


def _predictor(ckpt, conf):
    opts = tiny_opts()
    return Predictor(str(EXP_FILE), ckpt, conf=conf, **dict(zip(opts[0::2], opts[1::2])))


def test_a_conf_below_the_head_thresholds_gives_more_instances(shapes4, low_score_ckpt):
    image = str(shapes4 / "val" / "000001.jpg")
    default = _predictor(low_score_ckpt, 0.1)
    assert default.exp.head["score_threshold"] == 0.1
    assert default.exp.mask_nms["update_threshold"] == 0.05
    low = _predictor(low_score_ckpt, 0.02)
    assert low.exp.head["score_threshold"] == 0.02 and low.model.head.score_threshold == 0.02
    assert low.exp.mask_nms["update_threshold"] == 0.02
    few, many = default(image), low(image)
    assert len(many) > len(few)
    assert (many.scores >= 0.02).all() and (many.scores < 0.05).sum() > 0, many.scores
    assert many.masks.shape[0] == len(many) and many.masks.any((1, 2)).all()


def test_a_conf_above_the_head_thresholds_only_filters(low_score_ckpt):
    high = _predictor(low_score_ckpt, 0.3)
    assert high.exp.head["score_threshold"] == 0.1
    assert high.exp.mask_nms["update_threshold"] == 0.05
    exp = solov2_exp()
    exp.set_score_threshold(0.2)  # tools/eval.py --conf 0.2
    assert exp.get_score_threshold() == 0.2 and exp.mask_nms["update_threshold"] == 0.2

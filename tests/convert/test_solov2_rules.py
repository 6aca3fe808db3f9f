"""SOLOv2 rule table: every key of ppdet 2.6.0's four SOLOv2 models (built live from the shared
configs, names and shapes) lands one to one on our model built from the matching exp, with its
shape; Paddle's attribute aliases of the same tensors are dropped, nothing is left over."""
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mmdet_lite.convert.converter import convert_state_dict
from mmdet_lite.exp import get_exp

from conftest import PADDLE_CONFIGS, REPO_ROOT, run_paddle

CONFIGS = ["solov2_r50_fpn_1x_coco", "solov2_r50_fpn_3x_coco", "solov2_r50_enhance_coco",
           "solov2_r101_vd_fpn_3x_coco"]
REFERENCE = REPO_ROOT / "tests/reference/paddle_solov2_keys.py"


@pytest.fixture(scope="module")
def paddle_keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("solov2_keys")

    def dump(name):
        out = folder / f"{name}.json"
        run_paddle(REFERENCE, PADDLE_CONFIGS / "solov2" / f"{name}.yml", out)
        return name, json.loads(out.read_text())

    with ThreadPoolExecutor(max_workers=2) as pool:  # one model per Paddle process
        return dict(pool.map(dump, CONFIGS))


@pytest.mark.parametrize("name", CONFIGS)
def test_every_paddle_key_maps_one_to_one(paddle_keys, name):
    keys = paddle_keys[name]
    exp = get_exp(REPO_ROOT / "exps/solov2" / f"{name}.py")
    model = exp.get_model()
    params = {k: np.broadcast_to(np.float32(0), shape) for k, shape in keys.items()}
    state_dict, report = convert_state_dict(params, model, exp.convert_rules)
    assert not report.unused and not report.missing, report.summary()
    assert set(state_dict) == set(model.state_dict()) - {
        k for k in model.state_dict() if k.endswith("num_batches_tracked")}
    aliases = sum(k.startswith(("solov2_head.solo_", "mask_head.conv_pred.")) for k in keys)
    assert len(report.dropped) == aliases > 0
    assert len(report.filled) == len(keys) - aliases
    own = model.state_dict()
    assert all(tuple(v.shape) == tuple(own[k].shape) for k, v in state_dict.items())

"""Device selection, single-process dist helpers and drawing."""
import os

import numpy as np
import pytest
import torch

from mmdet_lite.utils import dist
from mmdet_lite.utils.device import check_num_devices, device_name, select_device
from mmdet_lite.utils.errors import UserError
from mmdet_lite.utils.visualize import vis


def test_cpu_and_missing_gpu(monkeypatch):
    assert select_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError) as err:
        select_device("gpu")
    assert str(err.value) == ("--device gpu was given but no CUDA GPU is available; "
                              "use --device cpu")
    assert device_name(None) == "cpu"
    with pytest.raises(UserError, match="--device tpu is not a device"):
        select_device("tpu")
    with pytest.raises(UserError, match="at least 1"):
        check_num_devices("cpu", 0)
    cores = len(os.sched_getaffinity(0))
    assert check_num_devices("cpu", cores) == cores
    with pytest.raises(UserError, match=f"-d {cores + 1}: this machine has {cores} CPU core"):
        check_num_devices("cpu", cores + 1)


def test_dist_helpers_without_a_group():
    assert (dist.get_rank(), dist.get_world_size(), dist.get_local_rank()) == (0, 1, 0)
    assert dist.is_main_process() and not dist.is_dist()
    assert dist.all_gather_object({"a": 1}) == [{"a": 1}]
    dist.synchronize()


def test_vis_draws_on_a_copy():
    image = np.zeros((64, 80, 3), np.uint8)
    out = vis(image, np.array([[5, 30, 60, 60]], np.float32), np.array([0.9]), np.array([1]),
              ["a", "b"], conf=0.5, masks=np.ones((1, 64, 80), bool))
    assert out.shape == image.shape and out.any() and not image.any()
    skipped = vis(image, np.array([[5, 5, 60, 60]]), np.array([0.2]), np.array([0]), conf=0.5)
    assert not skipped.any()

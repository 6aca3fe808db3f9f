"""The exps of the original SOLO repository's checkpoints: the network of PaddleDetection's
port (``solov2_r50_fpn_3x_coco``) with SOLO's configs' settings (WXinlong/SOLO
``configs/solov2/solov2_r50_fpn_8gpu_3x.py``, ``solov2_light_448_r50_fpn_8gpu_3x.py``)."""
import pytest

from mmdet_lite.exp import get_exp

from conftest import REPO_ROOT

EXPS = REPO_ROOT / "exps/solov2"


def test_solo_r50_is_paddles_network_with_mmdet_settings():
    solo, paddle = get_exp(EXPS / "solov2_r50_fpn_3x_solo.py"), \
        get_exp(EXPS / "solov2_r50_fpn_3x_coco.py")
    assert solo.convert_source_kinds == ("torch",) and paddle.convert_source_kinds == ("pdparams",)
    for section in ("backbone", "neck", "head", "mask_head", "mask_nms", "loss", "solov2_targets"):
        assert getattr(solo, section) == getattr(paddle, section), section
    assert solo.test_size == paddle.test_size == (800, 1333)
    assert solo.train_transforms == paddle.train_transforms  # (1333, 800..640), value mode
    assert [round(m * 255, 3) for m in solo.pixel_mean] == [123.675, 116.28, 103.53]
    assert [round(s * 255, 3) for s in solo.pixel_std] == [58.395, 57.12, 57.375]
    assert solo.mask_nms == dict(update_threshold=0.05, pre_nms_top_n=500, post_nms_top_n=100,
                                 kernel="gaussian", sigma=2.0)  # test_cfg
    assert (solo.head["score_threshold"], solo.head["mask_threshold"]) == (0.1, 0.5)
    assert solo.max_epoch == 36 and solo.lr_decay["milestones"] == [27, 33]
    assert (solo.warmup["steps"], solo.warmup["start_factor"]) == (500, 0.01)
    assert solo.clip_grad_norm == 35.0 and paddle.clip_grad_norm is None
    schedule = solo.get_lr_scheduler(iters_per_epoch=100, batch_size=16)
    assert schedule(0) == pytest.approx(1e-4) and schedule(2699) == pytest.approx(0.01)
    assert schedule(2700) == pytest.approx(0.001) and schedule(3300) == pytest.approx(1e-4)


def test_solo_light_448_head_sizes_and_scales():
    light, r50 = get_exp(EXPS / "solov2_light_448_r50_fpn_3x_solo.py"), \
        get_exp(EXPS / "solov2_r50_fpn_3x_solo.py")
    assert light.backbone == r50.backbone and light.neck == r50.neck
    assert {k: v for k, v in light.head.items()
            if r50.head[k] != v} == dict(seg_feat_channels=256, stacked_convs=2,
                                         kernel_out_channels=128)
    assert light.mask_head == {**r50.mask_head, "mid_channels": 128, "out_channels": 128}
    assert light.test_size == light.input_size == (448, 768)
    sizes = light.train_transforms["RandomResize"]["target_size"]
    assert sizes == [[s, 768] for s in (352, 384, 416, 448, 480, 512)]
    assert light.solov2_targets["scale_ranges"] == [[1, 56], [28, 112], [56, 224], [112, 448],
                                                    [224, 896]]
    assert light.solov2_targets["num_grids"] == [40, 36, 24, 16, 12]
    assert light.pixel_mean == r50.pixel_mean and light.mask_nms == r50.mask_nms

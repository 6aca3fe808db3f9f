"""The CPU-sized SOLOv2 of the shapes dataset: solov2_r50_fpn_1x_coco with only its size, data
and schedule changed."""
from mmdet_lite.data.synthetic import SHAPE_CATEGORIES
from mmdet_lite.exp import get_exp

from conftest import REPO_ROOT

EXPS = REPO_ROOT / "exps/solov2"


def test_shapes_exp_is_a_reduced_solov2_on_the_generated_set():
    exp, base = get_exp(EXPS / "solov2_shapes.py"), get_exp(EXPS / "solov2_r50_fpn_1x_coco.py")
    assert exp.backbone == dict(base.backbone, depth=18, freeze_norm=False)
    assert exp.neck == dict(base.neck, out_channel=64)
    assert exp.head == dict(base.head, seg_feat_channels=64, stacked_convs=2,
                            kernel_out_channels=32)
    assert exp.mask_head == dict(base.mask_head, mid_channels=32, out_channels=32)
    assert (exp.loss, exp.mask_nms) == (base.loss, base.mask_nms)
    assert exp.solov2_targets["num_grids"] == base.solov2_targets["num_grids"]
    assert exp.num_classes == len(SHAPE_CATEGORIES) and exp.data_dir == "datasets/shapes"
    assert exp.test_size == (256, 256) and exp.seed is not None
    model = exp.get_model()
    assert sum(p.numel() for p in model.parameters()) < 13_000_000
    assert model.head.solo_cate.out_channels == len(SHAPE_CATEGORIES)


def test_shapes_exp_lr_is_cosine_over_max_epoch_after_warmup():
    exp = get_exp(EXPS / "solov2_shapes.py")
    lr = exp.get_lr_scheduler(34, batch_size=exp.train_batch_size)
    base = exp.base_lr
    assert lr(0) < 0.2 * base and abs(lr(50) - base) < 0.01 * base
    assert lr(34 * exp.max_epoch - 1) < 0.01 * base

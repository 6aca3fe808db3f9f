"""The CPU-sized RTMDet shapes exp: the generated dataset, tiny's depth at the nano's width."""
from mmdet_lite.data.synthetic import SHAPE_CATEGORIES
from mmdet_lite.exp import get_exp

from conftest import REPO_ROOT

EXPS = REPO_ROOT / "exps/rtmdet"


def test_shapes_exp_is_a_small_rtmdet_on_the_generated_set():
    exp = get_exp(EXPS / "rtmdet_shapes.py")
    tiny = get_exp(EXPS / "rtmdet_tiny_8xb32-300e_coco.py")
    nano = get_exp(EXPS / "rtmdet_nano_8xb32_300e_coco_relu.py")
    assert exp.backbone == dict(tiny.backbone, widen_factor=nano.backbone["widen_factor"])
    assert exp.neck == dict(tiny.neck, out_channels=nano.neck["out_channels"])
    assert exp.head == dict(tiny.head, feat_channels=nano.head["feat_channels"])
    assert (exp.loss, exp.test_cfg, exp.pixel_mean, exp.pixel_std, exp.channel_order) == (
        tiny.loss, tiny.test_cfg, tiny.pixel_mean, tiny.pixel_std, tiny.channel_order)
    assert exp.num_classes == len(SHAPE_CATEGORIES)
    assert (exp.data_dir, exp.train_ann, exp.val_ann, exp.train_image_folder,
            exp.val_image_folder) == ("datasets/shapes", "annotations/train.json",
                                      "annotations/val.json", "train", "val")
    assert exp.seed is not None


def test_shapes_pipeline_and_schedule_follow_its_size_and_length():
    exp = get_exp(EXPS / "rtmdet_shapes.py")
    stage1, stage2 = exp.train_pipeline(), exp.train_pipeline(stage2=True)
    assert list(stage1) == ["CachedMosaic", "RandomResize", "RandomCrop", "YOLOXHSVRandomAug",
                            "RandomFlip", "Pad"]
    assert stage1["CachedMosaic"]["img_scale"] == stage1["Pad"]["size"] == (256, 256)
    assert stage1["RandomResize"]["scale"] == (512, 512)
    assert stage2["RandomResize"]["scale"] == stage2["RandomCrop"]["crop_size"] == (256, 256)
    assert exp.stage2_epoch == exp.max_epoch - 6 and exp.stage2_epoch % exp.eval_interval == 0
    assert exp.lr_decay_config()["max_epochs"] == exp.max_epoch
    assert exp.lr_per_image == exp.base_lr / exp.train_batch_size

"""The shapes demo exp, and two PicoDetExp behaviours it relies on: ``lr_decay.max_epochs None``
follows ``max_epoch``, and ``train_transforms`` configures the sample transforms."""
import pytest

from mmdet_lite.data.geometric import RandomCrop, RandomFlip
from mmdet_lite.data.photometric import RandomDistort
from mmdet_lite.data.synthetic import SHAPE_CATEGORIES
from mmdet_lite.exp import get_exp
from mmdet_lite.solver import build_learning_rate
from mmdet_lite.utils.errors import UserError

from conftest import REPO_ROOT

EXPS = REPO_ROOT / "exps/picodet"


def shapes_exp(*opts):
    exp = get_exp(EXPS / "picodet_xs_256_shapes.py")
    exp.merge([str(o) for o in opts])
    return exp


def test_shapes_exp_is_picodet_xs_on_the_generated_set():
    exp, xs = shapes_exp(), get_exp(EXPS / "picodet_xs_320_coco_lcnet.py")
    assert (exp.backbone, exp.neck, exp.pixel_mean, exp.pixel_std) == (
        xs.backbone, xs.neck, xs.pixel_mean, xs.pixel_std)
    head, xs_head = exp.head_config(), xs.head_config()
    assert head.pop("static_assigner_epoch") == exp.max_epoch // 3
    xs_head.pop("static_assigner_epoch")
    assert head == xs_head
    assert exp.num_classes == len(SHAPE_CATEGORIES)
    assert (exp.data_dir, exp.train_ann, exp.val_ann, exp.train_image_folder,
            exp.val_image_folder) == ("datasets/shapes", "annotations/train.json",
                                      "annotations/val.json", "train", "val")
    assert exp.seed is not None  # the demo is reproducible


@pytest.mark.parametrize("max_epoch", [None, 5])
def test_cosine_over_max_epoch_when_lr_decay_max_epochs_is_none(max_epoch):
    exp = shapes_exp() if max_epoch is None else shapes_exp("max_epoch", max_epoch)
    assert exp.lr_decay["max_epochs"] is None
    scheduler = exp.get_lr_scheduler(100, batch_size=exp.train_batch_size)
    decay = dict(exp.lr_decay, max_epochs=exp.max_epoch)
    expected = build_learning_rate(exp.base_lr, decay, exp.warmup, 100)
    steps = range(exp.max_epoch * 100 + 3)
    assert [scheduler(t) for t in steps] == [expected(t) for t in steps]
    assert scheduler(exp.max_epoch * 100 - 1) < 1e-3 * exp.base_lr  # decayed to ~0 at the end


def test_train_transforms_configure_the_sample_transforms():
    xs = get_exp(EXPS / "picodet_xs_320_coco_lcnet.py")  # Paddle's TrainReader
    assert [type(t) for t in xs.sample_transforms()] == [RandomCrop, RandomFlip, RandomDistort]
    flip, distort = shapes_exp("train_transforms.RandomFlip.prob", 0.25).sample_transforms()
    assert isinstance(distort, RandomDistort)
    assert isinstance(flip, RandomFlip) and flip.prob == 0.25
    assert shapes_exp("train_transforms", None).sample_transforms() == []
    exp = shapes_exp()
    exp.train_transforms = {"RandomFlip": {"prob": 0.5, "no_such_arg": 1}}
    with pytest.raises(UserError,
                       match="picodet_xs_256_shapes: train_transforms RandomFlip: .*no_such_arg"):
        exp.sample_transforms()
    exp.train_transforms = {"GridMask": {}}
    with pytest.raises(UserError,
                       match=r"train_transforms .GridMask. is not known; choose from RandomCrop"):
        exp.sample_transforms()

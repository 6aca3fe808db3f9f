"""The VOC 2012 transfer exps: the COCO model they start from, VOC data, a fine-tuning schedule."""
import pytest

from mmdet_lite.exp import get_exp

from conftest import REPO_ROOT

EXPS = REPO_ROOT / "exps/picodet"
CASES = {  # VOC exp -> (COCO exp whose weights it starts from, total batch, lr)
    "picodet_s_416_voc2012": ("picodet_s_416_coco_lcnet", 48, 0.06),
    "picodet_m_640_voc2012": ("picodet_m_416_coco_lcnet", 24, 0.03),
}
MODEL_FIELDS = ("backbone", "neck", "pixel_mean", "pixel_std")


@pytest.mark.parametrize("name", sorted(CASES))
def test_voc_exp(name):
    coco_name, total_batch, lr = CASES[name]
    voc, coco = get_exp(EXPS / f"{name}.py"), get_exp(EXPS / f"{coco_name}.py")
    # Same network as the COCO weights it fine-tunes (only the class count and assigner switch
    # differ).
    for field in MODEL_FIELDS:
        assert getattr(voc, field) == getattr(coco, field), field
    voc_head, coco_head = voc.head_config(), coco.head_config()
    assert voc_head.pop("static_assigner_epoch") == 4
    coco_head.pop("static_assigner_epoch")
    assert voc_head == coco_head

    assert voc.num_classes == 20
    assert voc.data_dir == "datasets/VOCdevkit"
    assert (voc.train_ann, voc.val_ann) == ("annotations/voc2012_train.json",
                                            "annotations/voc2012_val.json")
    assert voc.train_image_folder == voc.val_image_folder == "VOC2012/JPEGImages"

    assert (voc.max_epoch, voc.eval_interval, voc.lr_decay["max_epochs"]) == (16, 2, 20)
    assert voc.warmup == dict(name="LinearWarmup", steps=300, start_factor=0.1, epochs=1)
    assert voc.train_batch_size * voc.ref_num_devices == total_batch
    assert voc.base_lr == pytest.approx(lr) and voc.base_lr < coco.base_lr
    # miemiedetection's per-image LR for both: 0.24 / (4 GPUs x 48 images).
    assert voc.lr_per_image == pytest.approx(0.24 / (4 * 48))


def test_m_640_uses_the_640_reader_sizes():
    exp = get_exp(EXPS / "picodet_m_640_voc2012.py")
    assert exp.input_size == exp.test_size == (640, 640)
    assert exp.train_sizes == [576, 608, 640, 672, 704]

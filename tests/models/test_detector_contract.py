"""The detector contract (``models/architectures/base.py``): every family's ``postprocess`` gives
``Detections`` in original pixels, the families declare their ONNX outputs, an inference model
builds no training loss, and the config-name tables share one error text."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from mmdet_lite.models.architectures.base import BOX_ONNX_OUTPUTS, Detector  # noqa: E402
from mmdet_lite.models.architectures.picodet import PicoDet  # noqa: E402
from mmdet_lite.models.architectures.rtdetr import RTDETR, build_criterion  # noqa: E402
from mmdet_lite.models.backbones import BACKBONES  # noqa: E402
from mmdet_lite.models.heads.pico_head_v2_loss import PicoHeadV2Loss  # noqa: E402
from mmdet_lite.models.losses.detr_loss import DETRLoss  # noqa: E402
from mmdet_lite.models.post_process.detections import Detections  # noqa: E402
from mmdet_lite.utils.errors import UserError  # noqa: E402

import tiny_picodet  # noqa: E402
import tiny_rtdetr  # noqa: E402

FAMILIES = {"picodet": tiny_picodet, "rtdetr": tiny_rtdetr}
SIZE = 160


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_postprocesses_into_detections(family):
    torch.manual_seed(0)
    model = FAMILIES[family].separated_model()
    assert isinstance(model, Detector)
    images = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 255
    orig_sizes = torch.tensor([[320, 480], [100, 160]])
    scale_factors = (SIZE / orig_sizes).float()
    input_sizes = torch.tensor([[SIZE, SIZE]] * 2)
    with torch.no_grad():
        outputs = model(images)
        dets = model.postprocess(outputs, scale_factors, input_sizes, orig_sizes)
        unscaled = model.postprocess(outputs, torch.ones(2, 2), input_sizes, input_sizes)
    assert len(dets) == 2
    for det, ref, scale in zip(dets, unscaled, scale_factors):
        assert type(det) is Detections and det.masks is None and len(det) > 0
        assert det.boxes.dtype == torch.float32 and det.boxes.shape == (len(det), 4)
        assert det.scores.dtype == torch.float32 and det.scores.shape == (len(det),)
        assert det.labels.dtype == torch.int64 and det.labels.shape == (len(det),)
        # Original pixels: the input-pixel boxes divided by (scale_x, scale_y).
        assert len(det) == len(ref)
        torch.testing.assert_close(det.boxes, ref.boxes / scale.flip(0).repeat(2), rtol=1e-5,
                                   atol=1e-3)
        torch.testing.assert_close(det.scores, ref.scores)


def test_detections_select_keeps_the_fields_together():
    det = Detections(boxes=torch.arange(12.0).reshape(3, 4), scores=torch.tensor([0.9, 0.1, 0.5]),
                     labels=torch.tensor([2, 0, 1]), masks=torch.eye(3, dtype=torch.bool)[:, None])
    kept = det.select(det.scores >= 0.5)
    assert len(kept) == 2 and kept.labels.tolist() == [2, 1]
    assert kept.boxes.tolist() == [[0.0, 1.0, 2.0, 3.0], [8.0, 9.0, 10.0, 11.0]]
    assert kept.masks.shape == (2, 1, 3) and kept.masks[1, 0].tolist() == [False, False, True]
    assert det.select(torch.tensor([1])).masks.shape == (1, 1, 3)
    assert Detections(det.boxes, det.scores, det.labels).select(det.scores > 0.2).masks is None
    batched = Detections.unbatch(torch.zeros(2, 5, 4), torch.ones(2, 5),
                                 torch.zeros(2, 5, dtype=torch.int64))
    assert [len(d) for d in batched] == [5, 5] and batched[1].masks is None


def test_box_families_declare_the_four_box_outputs():
    names = ["boxes", "scores", "labels", "batch_indices"]
    assert list(BOX_ONNX_OUTPUTS) == names
    assert list(PicoDet.onnx_post_outputs) == list(RTDETR.onnx_post_outputs) == names
    assert list(PicoDet.onnx_raw_outputs) == ["scores", "bboxes"]
    assert list(RTDETR.onnx_raw_outputs) == ["logits", "boxes"]


def test_inference_model_builds_no_training_loss():
    model = tiny_picodet.tiny_exp().get_model()
    assert not any("criterion" in name for name, _ in model.named_modules())
    keys = list(model.state_dict())
    criterion = model.head.get_criterion()
    assert isinstance(criterion, PicoHeadV2Loss) and model.head.get_criterion() is criterion
    assert criterion.static_assigner_epoch == model.head.train_cfg["static_assigner_epoch"]
    assert list(model.state_dict()) == keys  # checkpoints are the same with or without it


def test_config_names_share_one_error_text():
    exp = tiny_picodet.tiny_exp("neck.name", "FPN")
    with pytest.raises(UserError, match=r"^neck.name 'FPN' is not known; choose from LCPAN, "
                                        r"CSPPAN$"):
        exp.get_model()
    with pytest.raises(UserError, match=r"^backbone.name 'ResNetVd' is not known; choose from "
                                        r"ResNet, PPHGNetV2, LCNet, CSPNeXt$"):
        BACKBONES.build(dict(name="ResNetVd", depth=18))
    with pytest.raises(UserError, match=r"^loss.name 'FocalLoss' is not known; choose from "
                                        r"DETRLoss$"):
        build_criterion(3, dict(name="FocalLoss"))
    with pytest.raises(UserError, match=r"^backbone.name ResNet: .*unexpected keyword .*'dpth'"):
        BACKBONES.build(dict(name="ResNet", dpth=18))
    assert isinstance(build_criterion(3, dict(name="DINOLoss")), DETRLoss)  # Paddle's name

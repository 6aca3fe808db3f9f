"""RT-DETR's post-process: stateless, Paddle-exact (ppdet's ``DETRBBoxPostProcess`` run in the
Paddle environment on the same tensors), and the ONNX variant equal to it in input pixels."""
import textwrap

import numpy as np
import pytest
import torch
import torch.nn as nn

from mmdet_lite.models.architectures.rtdetr import RTDETR, build_rtdetr
from mmdet_lite.models.post_process.detections import Detections
from mmdet_lite.models.post_process.detr_postprocess import detr_topk
from mmdet_lite.utils.errors import UserError

from conftest import run_paddle

NUM_CLASSES, QUERIES, TOP = 80, 300, 300
ORIG_SIZES = [(480, 640), (427, 640), (333, 500), (1, 7)]  # (h, w), COCO-like and degenerate
TEST_SIZE = (640, 640)

# ppdet 2.6's DETRBBoxPostProcess is develop's DETRPostProcess(bbox_decode_type='origin').
PADDLE_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import paddle
    from ppdet.modeling.post_process import DETRBBoxPostProcess

    data = np.load(sys.argv[1])
    post = DETRBBoxPostProcess(num_classes=int(data["num_classes"]),
                               num_top_queries=int(data["top"]), use_focal_loss=True)
    out, num = post((paddle.to_tensor(data["boxes"]), paddle.to_tensor(data["logits"]), None),
                    paddle.to_tensor(data["im_shape"]), paddle.to_tensor(data["scale_factor"]))
    np.save(sys.argv[2], out.numpy())
""")


def _head_only():
    """An RTDETR whose post-process is all that runs (no backbone / encoder / decoder)."""
    return RTDETR(nn.Identity(), nn.Identity(), nn.Identity(), num_top_queries=TOP)


def _outputs(seed=0):
    gen = torch.Generator().manual_seed(seed)
    batch = len(ORIG_SIZES)
    # Distinct logits (a permutation of a spread grid) keep the top-k order free of ties.
    logits = torch.randperm(batch * QUERIES * NUM_CLASSES, generator=gen).float()
    logits = (logits / logits.numel() * 16.0 - 12.0).reshape(batch, QUERIES, NUM_CLASSES)
    boxes = torch.rand(batch, QUERIES, 4, generator=gen)
    return logits, boxes


def _scale_factors():
    """As ``TestTransform`` / ppdet's Resize: float32 ``(th / h, tw / w)``."""
    return torch.tensor([[TEST_SIZE[0] / h, TEST_SIZE[1] / w] for h, w in ORIG_SIZES],
                        dtype=torch.float32)


def _orig_sizes():
    return torch.tensor(ORIG_SIZES)


def test_postprocess_is_paddle_exact(tmp_path):
    logits, boxes = _outputs()
    scale_factors = _scale_factors()
    input_sizes = torch.tensor([TEST_SIZE] * len(ORIG_SIZES))  # eval batches: int64 (N, 2)
    dets = _head_only().postprocess((logits, boxes), scale_factors, input_sizes, _orig_sizes())
    np.savez(tmp_path / "in.npz", logits=logits.numpy(), boxes=boxes.numpy(),
             im_shape=input_sizes.numpy().astype(np.float32), scale_factor=scale_factors.numpy(),
             num_classes=NUM_CLASSES, top=TOP)
    (tmp_path / "ref.py").write_text(PADDLE_SCRIPT)
    run_paddle(tmp_path / "ref.py", tmp_path / "in.npz", tmp_path / "out.npy")
    ref = np.load(tmp_path / "out.npy").reshape(len(ORIG_SIZES), TOP, 6)
    for det, r, (h, w) in zip(dets, ref, ORIG_SIZES):
        assert isinstance(det, Detections) and det.masks is None
        assert np.array_equal(det.labels.numpy(), r[:, 0].astype(np.int64))
        # Paddle's and PyTorch's sigmoid kernels differ by an ulp or two on some inputs.
        np.testing.assert_allclose(det.scores.numpy(), r[:, 1], rtol=0, atol=3e-7)
        assert np.array_equal(det.boxes.numpy(), r[:, 2:])  # bit-exact, original pixels
        assert det.boxes.dtype == torch.float32 and det.labels.dtype == torch.int64
    # The original size is recovered exactly from the float32 scale factor: a box spanning the
    # whole input spans the whole original image.
    full = torch.tensor([[0.5, 0.5, 1.0, 1.0]]).expand(len(ORIG_SIZES), QUERIES, 4)
    for det, (h, w) in zip(_head_only().postprocess((logits, full), scale_factors, input_sizes,
                                                    _orig_sizes()), ORIG_SIZES):
        assert det.boxes[0].tolist() == [0.0, 0.0, float(w), float(h)]


def test_postprocess_is_stateless():
    """Only the arguments decide the result: no size is remembered from a forward pass."""
    model = build_rtdetr(3, dict(name="ResNet", depth=18, variant="d", return_idx=[1, 2, 3],
                                 freeze_at=-1, freeze_norm=False),
                         dict(hidden_dim=64, expansion=0.5, encoder_layer=dict(
                             d_model=64, nhead=4, dim_feedforward=128)),
                         dict(hidden_dim=64, num_queries=20, num_decoder_layers=1, nhead=4,
                              dim_feedforward=128, num_denoising=0)).eval()
    scale = torch.ones(1, 2)
    with torch.no_grad():
        small = model(torch.rand(1, 3, 64, 96) * 255)
        first = model.postprocess(small, scale, *[torch.tensor([[64, 96]])] * 2)[0]
        model(torch.rand(1, 3, 128, 128) * 255)  # another forward in between changes nothing
        again = model.postprocess(small, scale, *[torch.tensor([[64, 96]])] * 2)[0]
    assert torch.equal(first.boxes, again.boxes)
    xyxy = torch.cat([small[1][0, :, :2] - small[1][0, :, 2:] / 2,
                      small[1][0, :, :2] + small[1][0, :, 2:] / 2], -1) * torch.tensor(
        [96.0, 64.0, 96.0, 64.0])
    query = torch.div(torch.topk(small[0][0].sigmoid().flatten(), 60).indices, 3,
                      rounding_mode="floor")
    assert torch.equal(first.boxes, xyxy[query])
    doubled = model.postprocess(small, scale, torch.tensor([[128, 192]]),
                                torch.tensor([[128, 192]]))[0]
    assert torch.allclose(doubled.boxes, first.boxes * 2)
    with pytest.raises(ValueError, match="input_sizes"):
        model.postprocess(small, scale, None, None)


def test_onnx_postprocess_equals_postprocess_in_input_pixels():
    logits, boxes = _outputs(seed=1)
    model = _head_only()
    images = torch.zeros(len(ORIG_SIZES), 3, *TEST_SIZE)
    out_boxes, scores, labels, batch = model.onnx_postprocess((logits, boxes), images)
    input_sizes = torch.tensor([TEST_SIZE] * len(ORIG_SIZES))
    dets = model.postprocess((logits, boxes), torch.ones(len(ORIG_SIZES), 2), input_sizes,
                             input_sizes)
    assert out_boxes.shape == (len(ORIG_SIZES) * TOP, 4) and batch.dtype == torch.int64
    assert torch.equal(batch, torch.arange(len(ORIG_SIZES)).repeat_interleave(TOP))
    assert torch.equal(out_boxes, torch.cat([d.boxes for d in dets]))
    assert torch.equal(scores, torch.cat([d.scores for d in dets]))
    assert torch.equal(labels, torch.cat([d.labels for d in dets]))


def test_top_k_is_capped_and_softmax_variant():
    logits, boxes = _outputs()
    _, scores, _ = detr_topk(logits[:, :2], boxes[:, :2], torch.ones(4, 2), TOP)
    assert scores.shape == (4, 2 * NUM_CLASSES)  # fewer (query, class) pairs than TOP
    _, scores, labels = detr_topk(logits, boxes, torch.ones(4, 2), 100, use_focal_loss=False)
    best = logits.softmax(-1)[..., :-1].max(-1)  # the last class is "no object"
    assert torch.equal(scores, best.values.topk(100).values)
    assert labels.max() < NUM_CLASSES - 1


def test_export_checks_and_eval_size():
    model = _head_only()
    with pytest.raises(UserError, match="opset 16"):
        model.check_onnx_export(15, False)
    with pytest.raises(UserError, match="opset 16"):
        model.check_onnx_export(15, True, postprocess=False)
    model.check_onnx_export(16, False)
    model.check_onnx_export(16, True)
    with torch.device("meta"), pytest.raises(UserError, match=r"test_size \(208, 208\).*32"):
        build_rtdetr(5, dict(name="ResNet", depth=18, return_idx=[1, 2, 3]),
                     dict(eval_size=[208, 208]),
                     dict(eval_size=[208, 208]))

"""RT-DETR's HybridEncoder, decoder and post-processing against HF transformers' RTDetr.

Both models get the same random weights (mapped between the two namings below) and the same
random backbone features; HF's own input projection and encoder run on them. Compared: encoder
maps, the encoder head's class logits before the top-k, the selected queries, decoder logits / boxes
and the final detections (eval), and every decoder layer with denoising queries (train). Last, the
assembled detector with our ResNet-18vd backbone and DETR criterion (``DETRLoss``).
"""
import math
import re

import pytest
import torch
from scipy.optimize import linear_sum_assignment
from transformers import (
    RTDetrConfig,
    RTDetrForObjectDetection,
    RTDetrImageProcessor,
    RTDetrResNetConfig,
)
from transformers.models.rt_detr.modeling_rt_detr import get_contrastive_denoising_training_group

from mmdet_lite.models.architectures.rtdetr import build_rtdetr
from mmdet_lite.models.post_process.detections import Detections
from mmdet_lite.models.post_process.detr_postprocess import detr_postprocess
from mmdet_lite.models.transformers import HybridEncoder, RTDETRTransformer

NUM_CLASSES = 80
BATCH, SIZE = 2, 160  # maps 20x20, 10x10, 5x5: every anchor valid, 525 candidates, 300 queries
ORIG_SIZES = torch.tensor([[480.0, 640.0], [333.0, 500.0]])
TOL = 1e-4
STRIDES = (8, 16, 32)

# name: (backbone channels, encoder hidden / FFN, expansion, decoder layers, eval_idx) as in ppdet
CONFIGS = {
    "r18vd": ((128, 256, 512), 256, 1024, 0.5, 3, -1),
    "r50vd": ((512, 1024, 2048), 256, 1024, 1.0, 6, -1),
    "r50vd_m": ((512, 1024, 2048), 256, 1024, 0.5, 6, 2),
    "r101vd": ((512, 1024, 2048), 384, 2048, 1.0, 6, -1),
}

# Our state-dict names -> HF's (applied in order with re.sub); in_proj is split into q/k/v below.
TO_HF = [
    (r"^encoder\.input_proj\.(\d+)\.conv\.", r"model.encoder_input_proj.\1.0."),
    (r"^encoder\.input_proj\.(\d+)\.bn\.", r"model.encoder_input_proj.\1.1."),
    (r"^encoder\.encoder\.(\d+)\.", r"encoder.aifi.\1."),
    (r"^(encoder\.aifi\.\d+\.layers\.\d+)\.norm1\.", r"\1.self_attn_layer_norm."),
    (r"^(encoder\.aifi\.\d+\.layers\.\d+)\.norm2\.", r"\1.final_layer_norm."),
    (r"^encoder\.(.*)\.bn\.", r"encoder.\1.norm."),
    (r"^encoder\.", "model.encoder."),
    (r"^decoder\.input_proj\.(\d+)\.conv\.", r"model.decoder_input_proj.\1.0."),
    (r"^decoder\.input_proj\.(\d+)\.norm\.", r"model.decoder_input_proj.\1.1."),
    (r"^decoder\.layers\.(\d+)\.norm1\.", r"decoder.layers.\1.self_attn_layer_norm."),
    (r"^decoder\.layers\.(\d+)\.norm2\.", r"decoder.layers.\1.encoder_attn_layer_norm."),
    (r"^decoder\.layers\.(\d+)\.norm3\.", r"decoder.layers.\1.final_layer_norm."),
    (r"^decoder\.layers\.(\d+)\.cross_attn\.", r"decoder.layers.\1.encoder_attn."),
    (r"^decoder\.(layers|query_pos_head)\.", r"model.decoder.\1."),
    (r"^decoder\.dec_score_head\.", "model.decoder.class_embed."),
    (r"^decoder\.dec_bbox_head\.", "model.decoder.bbox_embed."),
    (r"^decoder\.", "model."),
    (r"\.linear1\.", ".mlp.fc1."),
    (r"\.linear2\.", ".mlp.fc2."),
    (r"\.self_attn\.out_proj\.", ".self_attn.o_proj."),
]


def randomize_(module, seed):
    """Non-trivial random weights everywhere (zero-initialised heads too), positive variances."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            elif name.endswith("running_mean") or name.endswith("bias"):
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.1)
            elif tensor.ndim == 1:  # norm scales
                tensor.copy_(1.0 + torch.randn(tensor.shape, generator=gen) * 0.1)
            else:
                bound = 1.0 / math.sqrt(tensor[0].numel())
                tensor.copy_((torch.rand(tensor.shape, generator=gen) * 2 - 1) * bound)


def to_hf_state_dict(encoder, decoder):
    ours = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    ours.update({f"decoder.{k}": v for k, v in decoder.state_dict().items()})
    hf = {}
    for key, value in ours.items():
        for pattern, repl in TO_HF:
            key = re.sub(pattern, repl, key)
        match = re.match(r"(.*\.self_attn\.)in_proj\.(weight|bias)$", key)
        if match:
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3)):
                hf[f"{match[1]}{name}.{match[2]}"] = part.clone()
        elif key == "model.denoising_class_embed.weight":  # HF adds a zero row for the padding
            hf[key] = torch.cat([value, value.new_zeros(1, value.shape[1])])
        else:
            hf[key] = value.clone()
    return hf


def build_pair(name, seed=0):
    channels, enc_dim, enc_ffn, expansion, layers, eval_idx = CONFIGS[name]
    torch.manual_seed(seed)
    encoder = HybridEncoder(channels, STRIDES, hidden_dim=enc_dim, expansion=expansion,
                            encoder_layer=dict(d_model=enc_dim, nhead=8, dim_feedforward=enc_ffn,
                                               dropout=0.0, activation="gelu"))
    decoder = RTDETRTransformer(NUM_CLASSES, backbone_feat_channels=encoder.out_channels,
                                feat_strides=STRIDES, num_decoder_layers=layers, eval_idx=eval_idx)
    randomize_(encoder, seed + 1)
    randomize_(decoder, seed + 2)
    bottleneck = channels[0] == 512
    # HF builds a backbone: a tiny one with the right output channels (FeatureStub replaces it).
    backbone = RTDetrResNetConfig(out_indices=[2, 3, 4], depths=[1, 1, 1, 1], embedding_size=16,
                                  layer_type="bottleneck" if bottleneck else "basic",
                                  hidden_sizes=[channels[0] // 2, *channels])
    config = RTDetrConfig(backbone_config=backbone, num_labels=NUM_CLASSES,
                          encoder_in_channels=list(channels), encoder_hidden_dim=enc_dim,
                          encoder_ffn_dim=enc_ffn, hidden_expansion=expansion,
                          decoder_in_channels=[enc_dim] * 3, decoder_layers=layers, d_model=256)
    hf = RTDetrForObjectDetection(config)
    missing, unexpected = hf.load_state_dict(to_hf_state_dict(encoder, decoder), strict=False)
    assert not unexpected, unexpected
    assert all(".backbone." in k for k in missing), [k for k in missing if ".backbone." not in k]
    return encoder, decoder, hf


def random_features(channels, seed=3):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(BATCH, c, SIZE // s, SIZE // s, generator=gen)
            for c, s in zip(channels, STRIDES)]


class FeatureStub(torch.nn.Module):
    """Stands for HF's backbone: returns the given maps (and full masks) whatever the pixels."""

    def __init__(self, feats):
        super().__init__()
        self.feats = feats

    def forward(self, pixel_values, pixel_mask):
        return [(f, torch.ones(f.shape[0], *f.shape[2:], dtype=torch.bool)) for f in self.feats]


def run_hf(model, feats, **kwargs):
    """HF's model (input projection, encoder, decoder) on the given backbone maps."""
    inner = model.model if hasattr(model, "model") else model
    inner.backbone = FeatureStub(feats)
    return model(pixel_values=torch.zeros(BATCH, 3, SIZE, SIZE), **kwargs)


def assert_close(ours, theirs, tol=TOL, what=""):
    diff = (ours - theirs).abs().max().item()
    print(f"{what}: max abs diff {diff:.3g}")
    assert diff < tol, f"{what}: max abs diff {diff:.3g} >= {tol}"
    return diff


def check_selection(enc_class_ours, enc_class_hf, num_queries):
    """Same top-k sets, with a clear margin at the cut (so the comparison is not luck)."""
    diff = assert_close(enc_class_ours, enc_class_hf, what="encoder class logits before top-k")
    best = enc_class_hf.max(-1).values.sort(-1, descending=True).values
    margin = (best[:, num_queries - 1] - best[:, num_queries]).min().item()
    assert margin > max(20 * diff, 1e-5), f"top-k cut margin {margin:.2g} vs diff {diff:.2g}"
    ours = torch.topk(enc_class_ours.max(-1).values, num_queries, dim=1).indices
    hf = torch.topk(enc_class_hf.max(-1).values, num_queries, dim=1).indices
    assert torch.equal(ours.sort(-1).values, hf.sort(-1).values)
    # Queries are a set for the decoder: align both orders on the memory index.
    return ours.argsort(-1), hf.argsort(-1)


def take(x, order):
    """x (B, Q, ...) reordered along the queries by order (B, Q)."""
    index = order.view(*order.shape, *[1] * (x.ndim - 2)).expand(-1, -1, *x.shape[2:])
    return x.gather(1, index)


def match_detections(mine, theirs):
    """Pair our ``Detections`` one-to-one with HF's dict(boxes, labels) (same label, nearest box):
    near-equal scores may swap places."""
    cost = torch.cdist(mine.boxes.double(), theirs["boxes"].double(), p=1)
    cost[mine.labels[:, None] != theirs["labels"][None]] = 1e9
    a, b = linear_sum_assignment(cost.numpy())
    assert len(a) == len(mine.labels) and cost[a, b].max() < 1e9, "label sets differ"
    return torch.as_tensor(a), torch.as_tensor(b)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_eval_matches_hf(name):
    torch.set_num_threads(1)
    encoder, decoder, hf = build_pair(name)
    encoder.eval(), decoder.eval(), hf.eval()
    feats = random_features(CONFIGS[name][0])
    with torch.no_grad():
        enc_out = encoder(feats)
        memory, shapes = decoder.flatten_memory(enc_out)
        queries = decoder.select_queries(memory, shapes)
        logits, boxes = decoder(enc_out)
        out = run_hf(hf, feats)
    for ours, theirs in zip(enc_out, out.encoder_last_hidden_state):
        assert_close(ours, theirs, what="encoder output")
    order, hf_order = check_selection(queries["enc_outputs_class"], out.enc_outputs_class, 300)
    assert_close(take(queries["enc_topk_logits"], order), take(out.enc_topk_logits, hf_order),
                 what="enc_topk_logits")
    eval_idx = CONFIGS[name][5]  # HF has no eval_idx: its intermediate outputs hold every layer
    hf_logits = out.intermediate_logits[:, eval_idx]
    hf_boxes = out.intermediate_reference_points[:, eval_idx]
    if eval_idx == -1:
        assert torch.equal(hf_logits, out.logits) and torch.equal(hf_boxes, out.pred_boxes)
    assert logits.shape == (BATCH, 300, NUM_CLASSES) and boxes.shape == (BATCH, 300, 4)
    assert_close(take(logits, order), take(hf_logits, hf_order), what="decoder logits")
    assert_close(take(boxes, order), take(hf_boxes, hf_order), what="decoder boxes")

    # Final detections: Paddle's DETRPostProcess vs HF's post_process_object_detection (same math).
    scale_factors = SIZE / ORIG_SIZES
    im_shape = torch.full((BATCH, 2), float(SIZE))
    ours_det = detr_postprocess(logits, boxes, im_shape, scale_factors, 300)
    out.logits, out.pred_boxes = hf_logits, hf_boxes
    hf_det = RTDetrImageProcessor().post_process_object_detection(out, threshold=-1.0,
                                                                  target_sizes=ORIG_SIZES)
    for mine, theirs in zip(ours_det, hf_det):
        assert isinstance(mine, Detections) and mine.masks is None
        assert mine.boxes.shape == (300, 4) and mine.labels.dtype == torch.int64
        assert_close(mine.scores, theirs["scores"], what="detection scores")
        a, b = match_detections(mine, theirs)
        assert_close(mine.scores[a], theirs["scores"][b], what="matched detection scores")
        assert_close(mine.boxes[a], theirs["boxes"][b], tol=1e-3, what="detection boxes (px)")


def test_train_with_denoising_matches_hf():
    torch.set_num_threads(1)
    encoder, decoder, hf = build_pair("r18vd", seed=26)
    encoder.train(), decoder.train(), hf.train()
    feats = random_features(CONFIGS["r18vd"][0], seed=27)
    boxes = [[0.3, 0.4, 0.2, 0.3], [0.6, 0.5, 0.4, 0.2], [0.5, 0.5, 0.9, 0.8]]
    targets = [dict(class_labels=torch.tensor([3, 17, 42]), boxes=torch.tensor(boxes)),
               dict(class_labels=torch.tensor([5]), boxes=torch.tensor([[0.25, 0.7, 0.3, 0.4]]))]
    enc_out = encoder(feats)
    torch.manual_seed(5)  # our denoising.py draws as HF does: same RNG state, same groups
    out = decoder(enc_out, targets)
    torch.manual_seed(5)
    hf_out = run_hf(hf.model, feats, labels=targets)
    torch.manual_seed(5)  # HF's group handed in ready-made (float additive mask)
    hf_group = get_contrastive_denoising_training_group(
        targets, NUM_CLASSES, 300, hf.model.denoising_class_embed, 100, 0.5, 1.0)
    out_hf_group = decoder(enc_out, denoising=hf_group)
    num_dn = hf_group[3]["dn_num_split"][0]
    assert out["denoising_meta_values"]["dn_num_split"] == [num_dn, 300]
    for ours, theirs in zip(out["denoising_meta_values"]["dn_positive_idx"],
                            hf_group[3]["dn_positive_idx"]):
        assert torch.equal(ours, theirs)
    assert out["intermediate_logits"].shape == (BATCH, 3, num_dn + 300, NUM_CLASSES)
    assert_close(out["intermediate_logits"], out_hf_group["intermediate_logits"], tol=1e-6,
                 what="ready-made vs built denoising group")
    with torch.no_grad():
        enc_class = decoder.select_queries(*decoder.flatten_memory(enc_out))["enc_outputs_class"]
        order, hf_order = check_selection(enc_class, hf_out.enc_outputs_class, 300)
    assert_close(take(out["enc_topk_bboxes"], order), take(hf_out.enc_topk_bboxes, hf_order),
                 what="enc_topk_bboxes")
    for key, hf_value in (("intermediate_logits", hf_out.intermediate_logits),
                          ("intermediate_reference_points", hf_out.intermediate_reference_points)):
        ours = out[key].detach()
        assert_close(ours[:, :, :num_dn], hf_value[:, :, :num_dn], what=f"{key} (denoising)")
        for layer in range(ours.shape[1]):
            assert_close(take(ours[:, layer, num_dn:], order),
                         take(hf_value[:, layer, num_dn:], hf_order), what=f"{key} layer {layer}")
    assert torch.equal(out["logits"], out["intermediate_logits"][:, -1])
    out["pred_boxes"].sum().backward()  # gradients flow to the decoder heads and the encoder
    assert decoder.dec_bbox_head[1].layers[0].weight.grad is not None
    assert encoder.input_proj[2].conv.weight.grad is not None


def test_detector_eval_postprocess_and_train():
    """The assembled RTDETR (our ResNet-18vd, encoder/decoder and ``DETRLoss`` criterion)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    coeff = {"class": 1, "bbox": 5, "giou": 2}
    model = build_rtdetr(
        4, dict(name="ResNet", depth=18, variant="d", return_idx=[1, 2, 3], freeze_at=-1,
                freeze_norm=False),
        dict(hidden_dim=256, expansion=0.5,
             encoder_layer=dict(d_model=256, nhead=8, dim_feedforward=1024, activation="gelu")),
        dict(num_decoder_layers=3, num_queries=50, num_denoising=20),
        loss=dict(name="DINOLoss", loss_coeff=coeff, aux_loss=True, use_vfl=True,
                  matcher=dict(name="HungarianMatcher", matcher_coeff=dict(coeff, **{"class": 2}))))
    images = torch.randint(0, 256, (BATCH, 3, 96, 128)).float()
    model.eval()
    with torch.no_grad():
        logits, boxes = model(images)
        normalized = model.normalize(images)
        manual = model.decoder(model.encoder(model.backbone(normalized)))
    assert torch.allclose(normalized, images / 255.0)  # RT-DETR's reader: mean 0, std 1
    assert logits.shape == (BATCH, 50, 4) and boxes.shape == (BATCH, 50, 4)
    assert torch.equal(logits, manual[0]) and torch.equal(boxes, manual[1])
    scale_factors = torch.tensor([[96 / 480, 128 / 640], [96 / 333, 128 / 500]])
    orig_sizes = torch.tensor([[480, 640], [333, 500]])
    dets = model.postprocess((logits, boxes), scale_factors, torch.tensor([[96, 128]] * BATCH),
                             orig_sizes)
    im_shape = torch.tensor([[96.0, 128.0]] * BATCH)
    expected = detr_postprocess(logits, boxes, im_shape, scale_factors, 300)
    for det, ref in zip(dets, expected):
        assert isinstance(det, Detections) and det.masks is None
        assert det.boxes.shape == (50 * 4, 4) and det.labels.dtype == torch.int64
        assert torch.equal(det.boxes, ref.boxes) and torch.equal(det.scores, ref.scores)
    model.train()
    targets = dict(gt_labels=torch.tensor([[[1], [3]], [[2], [0]]]),
                   gt_bboxes=torch.tensor([[[0.3, 0.4, 0.2, 0.3], [0.6, 0.5, 0.4, 0.2]],
                                           [[0.5, 0.5, 0.5, 0.6], [0.0, 0.0, 0.0, 0.0]]]),
                   pad_gt_mask=torch.tensor([[[1], [1]], [[1], [0]]]), epoch_id=0)
    losses = model(images, targets)
    assert {"total_loss", "loss_class", "loss_bbox_dn", "loss_giou_aux"} <= set(losses)
    assert torch.isfinite(losses["total_loss"])
    losses["total_loss"].backward()
    assert model.backbone.res5[0].branch2a.conv.weight.grad is not None
    assert model.decoder.denoising_class_embed.weight.grad is not None

"""Renaming rules from PaddleDetection's RT-DETR (``DETR``: backbone, ``neck`` HybridEncoder,
``transformer`` RTDETRTransformer) to our ``RTDETR`` (backbone, ``encoder``, ``decoder``).

Same format as ``picodet_rules``: ``(regex on the Paddle key, replacement)`` applied in order by
``convert_state_dict``, which then renames BatchNorm's ``_mean`` / ``_variance`` and transposes the
weights of our ``nn.Linear`` modules (Paddle stores [in, out]). ``DINOHead`` and its loss hold no
tensors. The backbone rules are the shared ``backbone_rules`` (ResNet-vd and PP-HGNetV2).
"""
from .backbone_rules import HGNETV2_RULES, RESNET_RULES

RTDETR_BACKBONE_RULES = RESNET_RULES + HGNETV2_RULES

# Paddle's MultiHeadAttention packs q, k, v in ``in_proj_weight`` [E, 3E] / ``in_proj_bias``; ours
# is an ``nn.Linear`` ``in_proj`` (3E, E), so the converter transposes the weight.
ATTENTION_RULES = [
    (r"\.self_attn\.in_proj_(weight|bias)$", r".self_attn.in_proj.\1"),
]

# HybridEncoder: Paddle's input projections are Sequential(Conv2D, BatchNorm2D), ours ConvBN;
# every other name (encoder.0.layers.0.*, lateral_convs, fpn_blocks, downsample_convs,
# pan_blocks with conv/bn) is Paddle's.
ENCODER_RULES = [
    (r"^neck\.input_proj\.(\d+)\.0\.", r"encoder.input_proj.\1.conv."),
    (r"^neck\.input_proj\.(\d+)\.1\.", r"encoder.input_proj.\1.bn."),
    (r"^neck\.", "encoder."),
]

# RTDETRTransformer: Paddle's inner TransformerDecoder (``transformer.decoder.layers``) is flattened
# into our decoder's ``layers``; heads, embeddings and input_proj (conv/norm) keep their names.
DECODER_RULES = [
    (r"^transformer\.decoder\.layers\.", "decoder.layers."),
    (r"^transformer\.", "decoder."),
]

RTDETR_RULES = RTDETR_BACKBONE_RULES + ATTENTION_RULES + ENCODER_RULES + DECODER_RULES

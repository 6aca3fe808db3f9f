"""Renaming rules from PaddleDetection's shared backbones (``ResNet``, ``PPHGNetV2``) to ours.

Same format as ``picodet_rules``: ``(regex on the Paddle key, replacement)`` applied in order by
``convert_state_dict``, which then renames BatchNorm's ``_mean`` / ``_variance``. Rules only touch
keys under ``backbone.`` (and the ImageNet-pretrained keys below), so a family's table
concatenates them with its neck / head rules (RT-DETR: ``rtdetr_rules``; SOLOv2: ``solov2_rules``).

ImageNet-pretrained files (``ResNet{18,34}_vd_pretrained``, ``ResNet50_vd_ssld_v2_pretrained``,
``ResNet101_vd_ssld_pretrained``, ``ResNet50_cos_pretrained``, ``PPHGNetV2_{L,X}_ssld_pretrained``;
converted with ``--only_backbone True``) carry ppdet's backbone names without the ``backbone.``
prefix: ppdet loads them by suffix match (``ppdet/utils/checkpoint.py`` ``match_state_dict``).
The first rule of each table adds the prefix; a classifier's own keys (``fc``, ``last_conv``, ...)
keep their names and are reported unused.
"""

# Paddle names the blocks of a stage res{n}a, res{n}b, ...; a stage of more than ten blocks
# (res4 of ResNet-101/152) res4a, res4b1, res4b2, ... Ours are indices.
_BLOCK_LETTERS = "abcdefghij"

# ResNet, every variant: ``backbone.res4.res4b3.branch2b.norm._mean`` ->
# ``backbone.res4.3.branch2b.bn.running_mean``; the stems ``backbone.conv1.conv1_1.conv.weight``
# (c, d) and ``backbone.conv1.conv1.conv.weight`` (a, b) keep their names; the variant-d shortcut
# ``res3.res3a.short.conv.conv.weight`` (pool + ConvBN) -> ``res3.0.short.conv.conv.weight``.
# DCNv2 (``dcn_v2_stages``): Paddle's ConvNormLayer holds ``conv_offset`` beside its DeformConv2D
# ``conv``; ours sits in the deformable conv: ``res3.res3a.branch2b.conv_offset.weight`` ->
# ``res3.0.branch2b.conv.conv_offset.weight`` (``branch2b.conv.weight`` keeps its name).
RESNET_RULES = [
    (r"^(?=(?:conv1|res[2-5])\.)", "backbone."),
    (r"^(backbone\.res\d)\.res\db(\d+)\.", r"\1.\2."),
    *[(rf"^(backbone\.res\d)\.res\d{letter}\.", rf"\1.{index}.")
      for index, letter in enumerate(_BLOCK_LETTERS)],
    (r"^(backbone\.(?:conv1|res\d)\..*)\.norm\.", r"\1.bn."),
    (r"^(backbone\.res\d\.\d+\.branch2b)\.conv_offset\.", r"\1.conv.conv_offset."),
]

# PPHGNetV2: our names are Paddle's (``backbone.stages.2.blocks.0.layers.3.conv2.bn._variance``).
HGNETV2_RULES = [
    (r"^(?=(?:stem|stages)\.)", "backbone."),
]

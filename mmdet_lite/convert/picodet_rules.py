"""Renaming rules from PaddleDetection's PicoDet (v2, LCNet backbone) names to ours.

Each rule is ``(regex on the Paddle key, replacement)``; ``convert_state_dict`` applies every rule
in order with ``re.sub`` (a replacement of ``None`` drops the key), then renames BatchNorm's
``_mean`` / ``_variance`` to ``running_mean`` / ``running_var``. Keys no rule touches keep their
name.
"""

# LCNet: our names are Paddle's (``backbone.blocks3.0.dw_conv.conv.weight``, ``...se.conv1.bias``).
# ImageNet-pretrained PP-LCNet files (PaddleClas, used with ``--only_backbone True``) have no
# ``backbone.`` prefix; their classifier keys (``last_conv``, ``fc``) stay unused.
BACKBONE_RULES = [
    (r"^(?=(?:conv1|blocks[2-6])\.)", "backbone."),
]

# LCPAN / CSPPAN: Paddle's ``conv_t.convs`` are our ``lateral_convs``; Paddle's ``DPModule``
# (dwconv, bn1, pwconv, bn2) is our ``DepthwiseSeparable`` (dw_conv.{conv,bn}, pw_conv.{conv,bn}).
NECK_RULES = [
    (r"^neck\.conv_t\.convs\.", "neck.lateral_convs."),
    (r"^(neck\..*)\.dwconv\.", r"\1.dw_conv.conv."),
    (r"^(neck\..*)\.bn1\.", r"\1.dw_conv.bn."),
    (r"^(neck\..*)\.pwconv\.", r"\1.pw_conv.conv."),
    (r"^(neck\..*)\.bn2\.", r"\1.pw_conv.bn."),
]

# PicoHeadV2: filled by the head's author. Rules here must match ``^head\.`` only; drop Paddle's
# aliases saved twice with a ``None`` replacement
# (``head.head_cls{i}`` = ``head.head_cls_list.{i}``).
# Dropped: the aliases ``head_cls{i}`` / ``head_reg{i}`` (same tensors as ``head_*_list.{i}``), the
# unused ``p{3..6}_feat.scale_reg`` of GFLHead and the fixed ``distribution_project.project``.
# PicoFeat's ``cls_conv_dw{level}.{i}`` are our nested ``cls_conv_dw.{level}.{i}`` ConvBN; the
# align branch is a DPModule (dwconv, bn1, pwconv, bn2) -> our DepthwiseSeparable.
HEAD_RULES = [
    (r"^head\.head_(cls|reg)\d+\.", None),
    (r"^head\.p\d+_feat\.scale_reg$", None),
    (r"^head\.distribution_project\.project$", None),
    (r"^head\.conv_feat\.(cls|reg)_conv_(dw|pw)(\d+)\.", r"head.conv_feat.\1_conv_\2.\3."),
    (r"^(head\.conv_feat\..*)\.norm\.", r"\1.bn."),
    (r"^head\.head_(cls|reg)_list\.", r"head.head_\1."),
    (r"^(head\.cls_align\.\d+)\.dwconv\.", r"\1.dw_conv.conv."),
    (r"^(head\.cls_align\.\d+)\.bn1\.", r"\1.dw_conv.bn."),
    (r"^(head\.cls_align\.\d+)\.pwconv\.", r"\1.pw_conv.conv."),
    (r"^(head\.cls_align\.\d+)\.bn2\.", r"\1.pw_conv.bn."),
]

PICODET_RULES = BACKBONE_RULES + NECK_RULES + HEAD_RULES

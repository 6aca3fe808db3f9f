"""Renaming rules from the original SOLO repository's SOLOv2 (WXinlong/SOLO, mmdetection 1.x) to
our SOLOv2 (``backbone`` ResNet variant b, ``neck`` FPN, ``head``, ``mask_head``).

Same format as ``picodet_rules``: ``(regex on the source key, replacement)`` applied in order by
``convert_state_dict`` (a ``None`` replacement drops the key). SOLO's names, read from its
modules:

- ``backbones/resnet.py`` (``style='pytorch'``: the stride in the 3x3 conv, our variant b):
  stem ``conv1`` + ``bn1``; stage ``layer{s}`` (s = 1..4, our ``res{s+1}``), block ``j`` with
  ``conv1/2/3`` + ``bn1/2/3`` (our ``branch2a/b/c`` ConvBN; a BasicBlock has ``conv1/2``) and the
  shortcut ``downsample.0`` (1x1 conv) / ``downsample.1`` (BN), our ``short``. BatchNorm's
  ``num_batches_tracked`` counters are dropped (our backbone norms are frozen).
- ``necks/fpn.py``: ``lateral_convs.{i}.conv`` and ``fpn_convs.{i}.conv`` (ConvModule without
  norm: conv with bias), our bare convs ``lateral_convs.{i}`` / ``fpn_convs.{i}``.
- ``anchor_heads/solov2_head.py`` (``bbox_head``, our ``head``): ``kernel_convs.{i}`` and
  ``cate_convs.{i}`` ConvModules ``conv`` (no bias) + ``gn`` (GroupNorm 32), our ConvGN
  ``conv`` + ``norm``; ``solo_kernel`` and ``solo_cate`` keep their names.
- ``mask_heads/mask_feat_head.py`` (``mask_feat_head``, our ``mask_head``): level ``i``'s
  ``nn.Sequential`` holds ``conv{j}`` ConvModules (and parameter-free ``upsample{j}``), our
  ``convs_all_levels.{i}.{j}``; ``conv_pred.0`` is our ``conv_pred``.
"""

_BOTTLENECK_CONVS = "abc"

SOLO_BACKBONE_RULES = [
    (r"(^|\.)num_batches_tracked$", None),
    (r"^backbone\.conv1\.", "backbone.conv1.conv1.conv."),
    (r"^backbone\.bn1\.", "backbone.conv1.conv1.bn."),
    *[(rf"^backbone\.layer{stage}\.", f"backbone.res{stage + 1}.") for stage in range(1, 5)],
    *[(rf"^(backbone\.res\d\.\d+)\.conv{index + 1}\.", rf"\1.branch2{letter}.conv.")
      for index, letter in enumerate(_BOTTLENECK_CONVS)],
    *[(rf"^(backbone\.res\d\.\d+)\.bn{index + 1}\.", rf"\1.branch2{letter}.bn.")
      for index, letter in enumerate(_BOTTLENECK_CONVS)],
    (r"^(backbone\.res\d\.\d+)\.downsample\.0\.", r"\1.short.conv."),
    (r"^(backbone\.res\d\.\d+)\.downsample\.1\.", r"\1.short.bn."),
]

SOLO_NECK_RULES = [
    (r"^neck\.(lateral|fpn)_convs\.(\d+)\.conv\.", r"neck.\1_convs.\2."),
]

SOLO_HEAD_RULES = [
    (r"^bbox_head\.", "head."),
    (r"^(head\.(?:kernel|cate)_convs\.\d+)\.gn\.", r"\1.norm."),
    (r"^mask_feat_head\.convs_all_levels\.(\d+)\.conv(\d+)\.",
     r"mask_head.convs_all_levels.\1.\2."),
    (r"^mask_feat_head\.conv_pred\.0\.", "mask_head.conv_pred."),
    (r"^(mask_head\..*)\.gn\.", r"\1.norm."),
]

SOLO_RULES = SOLO_BACKBONE_RULES + SOLO_NECK_RULES + SOLO_HEAD_RULES

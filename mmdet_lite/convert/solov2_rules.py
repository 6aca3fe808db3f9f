"""Renaming rules from PaddleDetection's SOLOv2 (``backbone`` ResNet, ``neck`` FPN, ``solov2_head``,
``mask_head``) to ours.

Same format as ``picodet_rules``: ``(regex on the Paddle key, replacement)`` applied in order by
``convert_state_dict``, which then renames BatchNorm's ``_mean`` / ``_variance``. The backbone rules
are the shared ``backbone_rules.RESNET_RULES`` (variant b and vd, DCNv2 ``conv_offset``).
"""
from .backbone_rules import RESNET_RULES
from .solov2_head_rules import SOLOV2_HEAD_RULES


def fpn_rules(first_stage=2, num_levels=4, prefix="neck"):
    """Rules from Paddle's FPN names to our ``FPN`` for inputs ``res{first_stage}`` onwards.

    Paddle names its convs by ResNet stage: ``fpn_inner_res{n}_sum_lateral`` (``res5``:
    ``fpn_inner_res5_sum``) and ``fpn_res{n}_sum``; ours are ``lateral_convs.{i}`` and
    ``fpn_convs.{i}`` with ``i = n - first_stage``.
    """
    rules = []
    for level in range(num_levels):
        stage = first_stage + level
        rules += [(rf"^{prefix}\.fpn_inner_res{stage}_sum(?:_lateral)?\.",
                   f"{prefix}.lateral_convs.{level}."),
                  (rf"^{prefix}\.fpn_res{stage}_sum\.", f"{prefix}.fpn_convs.{level}.")]
    return rules


# SOLOv2's FPN takes res2..res5 (``return_idx: [0, 1, 2, 3]``).
FPN_RULES = fpn_rules()

SOLOV2_BACKBONE_NECK_RULES = RESNET_RULES + FPN_RULES

# The family's table: backbone and neck, then the heads' (``solov2_head_rules``: they match
# ``^solov2_head\.`` / ``^mask_head\.`` only).
SOLOV2_RULES = SOLOV2_BACKBONE_NECK_RULES + SOLOV2_HEAD_RULES

"""Renaming rules from PaddleDetection's SOLOv2 heads (``solov2_head`` SOLOv2Head, ``mask_head``
SOLOv2MaskHead) to ours (``head``, ``mask_head``).

Same format as ``picodet_rules``: ``(regex on the Paddle key, replacement)`` applied in order by
``convert_state_dict`` (a ``None`` replacement drops the key). Rules match ``^solov2_head\\.`` and
``^mask_head\\.`` only, so the SOLOv2 table concatenates them with the backbone and neck rules.

Paddle registers each conv under a dotted sublayer name and, for ``solo_kernel``, ``solo_cate``
and the mask head's ``conv_pred``, again as an attribute: the state dict holds those tensors
twice, and the attribute aliases (``solov2_head.solo_kernel.*``, ``solov2_head.solo_cate.*``,
``mask_head.conv_pred.*``) are dropped. A DCN's ``conv.conv_offset`` keeps its name and its
``conv.conv_dcn`` is our ``conv`` (``DeformableConvV2`` holds ``weight`` / ``bias``).
"""

SOLOV2_HEAD_RULES = [
    (r"^solov2_head\.solo_(kernel|cate)\.", None),
    (r"^mask_head\.conv_pred\.", None),
    (r"^solov2_head\.bbox_head\.", "head."),
    (r"^mask_head\.conv_pre_feat(\d+)\.mask_feat_head\.convs_all_levels\.\1\.conv(\d+)\.",
     r"mask_head.convs_all_levels.\1.\2."),
    (r"^mask_head\.mask_feat_head\.conv_pred\.0\.", "mask_head.conv_pred."),
    (r"^((?:head|mask_head)\..*)\.conv\.conv_dcn\.", r"\1.conv."),
]

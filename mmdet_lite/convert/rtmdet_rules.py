"""Renaming rules from mmdet 3.3.0's RTMDet (``backbone`` CSPNeXt, ``neck`` CSPNeXtPAFPN) and from
mmyolo / SSCMA's RTMDet to ours.

Same format as ``picodet_rules``: ``(regex on the source key, replacement)`` applied in order by
``convert_state_dict``. mmdet's ConvModule keys (``conv``, ``bn``) are ours already.
"""

_BLOCK_RULES = [(r"\.conv2\.depthwise_conv\.", ".conv2.depthwise."),
                (r"\.conv2\.pointwise_conv\.", ".conv2.pointwise.")]

# mmdet's CSPNeXt: ``stage{n}.{i}`` -> ``stages.{n-1}.{i}`` (P5 has 4 stages, P6 5).
CSPNEXT_RULES = [(rf"^backbone\.stage{n}\.", f"backbone.stages.{n - 1}.") for n in range(1, 6)]
CSPNEXT_RULES += _BLOCK_RULES

# mmdet's CSPNeXtPAFPN: only ``reduce_layers`` differs from our names.
CSPNEXT_PAFPN_RULES = [(r"^neck\.reduce_layers\.", "neck.reduce_convs.")]

# mmyolo's CSPNeXtPAFPN (BaseYOLONeck, three levels): ``reduce_layers.2`` is the top reduce conv
# (levels 0 and 1 are Identity), ``top_down_layers.0`` a Sequential(CSPLayer, the next reduce
# conv), ``top_down_layers.1`` a CSPLayer, then downsample / bottom-up / out layers.
MMYOLO_PAFPN_RULES = [(r"^neck\.reduce_layers\.2\.", "neck.reduce_convs.0."),
                      (r"^neck\.top_down_layers\.0\.0\.", "neck.top_down_blocks.0."),
                      (r"^neck\.top_down_layers\.0\.1\.", "neck.reduce_convs.1."),
                      (r"^neck\.top_down_layers\.1\.", "neck.top_down_blocks.1."),
                      (r"^neck\.downsample_layers\.", "neck.downsamples."),
                      (r"^neck\.bottom_up_layers\.", "neck.bottom_up_blocks."),
                      (r"^neck\.out_layers\.", "neck.out_convs.")]

RTMDET_BACKBONE_NECK_RULES = CSPNEXT_RULES + CSPNEXT_PAFPN_RULES
SSCMA_RTMDET_BACKBONE_NECK_RULES = CSPNEXT_RULES + MMYOLO_PAFPN_RULES

# The head's rules are added when the head (RTMDetSepBNHead) lands.
RTMDET_RULES = RTMDET_BACKBONE_NECK_RULES
SSCMA_RTMDET_RULES = SSCMA_RTMDET_BACKBONE_NECK_RULES

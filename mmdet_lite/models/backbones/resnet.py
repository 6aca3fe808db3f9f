"""PaddleDetection's ``ResNet`` (``ppdet/modeling/backbones/resnet.py``): variants a..d, DCNv2.

One backbone for RT-DETR (ResNet-vd) and SOLOv2 (ResNet-50 variant b; ResNet-vd with DCNv2 in
res3..res5). Module names follow Paddle's (``conv1.conv1_1`` / ``conv1.conv1``, ``res2`` ..
``res5``, ``branch2a`` .. ``branch2c``, ``short``) except that the blocks of a stage are indexed
(Paddle's ``res4.res4b3`` is our ``res4.3``), a ConvBN's norm is ``bn`` and a DCN's offset conv
sits in its conv (Paddle's ``branch2b.conv_offset`` is our ``branch2b.conv.conv_offset``):
``mmdet_lite/convert/backbone_rules.py`` maps them.
"""
from collections import OrderedDict

import torch.nn as nn
import torch.nn.functional as F

from mmdet_lite.models.layers import ConvBN, DeformableConvV2, FrozenBatchNorm2d
from mmdet_lite.utils.errors import UserError

# Blocks per stage (res2 .. res5) for each depth.
RESNET_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
                 152: (3, 8, 36, 3)}
_STAGE_WIDTHS = (64, 128, 256, 512)
_STRIDES = (4, 8, 16, 32)


def _projection(in_channels, out_channels, stride, variant):
    """The shortcut of a block that changes shape: 1x1 ConvBN, after a 2x2 avg-pool in variant d."""
    if variant == "d" and stride == 2:
        return nn.Sequential(OrderedDict(
            pool=nn.AvgPool2d(2, 2, 0, ceil_mode=True),
            conv=ConvBN(in_channels, out_channels, 1)))
    return ConvBN(in_channels, out_channels, 1, stride)


class BasicBlock(nn.Module):
    """Two 3x3 ConvBN + shortcut, ReLU: (N, Cin, H, W) -> (N, Cout, H/s, W/s) (ResNet-18/34).

    ``project``: the shortcut is a projection (``short``) instead of the identity. ``dcn_v2``:
    ``branch2b`` is deformable (DCNv2).
    """

    expansion = 1

    def __init__(self, in_channels, channels, stride=1, project=False, variant="b", dcn_v2=False):
        super().__init__()
        self.branch2a = ConvBN(in_channels, channels, 3, stride, act="relu")
        self.branch2b = ConvBN(channels, channels, 3, dcn_v2=dcn_v2)
        self.short = _projection(in_channels, channels, stride, variant) if project else None

    def forward(self, x):
        out = self.branch2b(self.branch2a(x))
        return F.relu(out + (x if self.short is None else self.short(x)))


class BottleNeck(nn.Module):
    """1x1 -> 3x3 -> 1x1 ConvBN + shortcut, ReLU: (N, Cin, H, W) -> (N, 4 * C, H/s, W/s).

    The stride is on the 3x3 conv ``branch2b`` (variants b, c, d; on the first 1x1 in variant a).
    ``project`` and ``dcn_v2`` (on ``branch2b``) as in BasicBlock.
    """

    expansion = 4

    def __init__(self, in_channels, channels, stride=1, project=False, variant="b", dcn_v2=False):
        super().__init__()
        stride1, stride2 = (stride, 1) if variant == "a" else (1, stride)
        out_channels = channels * self.expansion
        self.branch2a = ConvBN(in_channels, channels, 1, stride1, act="relu")
        self.branch2b = ConvBN(channels, channels, 3, stride2, act="relu", dcn_v2=dcn_v2)
        self.branch2c = ConvBN(channels, out_channels, 1)
        self.short = _projection(in_channels, out_channels, stride, variant) if project else None

    def forward(self, x):
        out = self.branch2c(self.branch2b(self.branch2a(x)))
        return F.relu(out + (x if self.short is None else self.short(x)))


class ResNet(nn.Module):
    """ResNet: (N, 3, H, W) -> list of feature maps, one per ``return_idx``; Paddle's defaults.

    Stage ``i`` (0..3, Paddle's ``res{i+2}``) has stride ``4 * 2**i``; ``out_channels`` and
    ``out_strides`` list the returned maps' channels and strides (ResNet-50, ``(1, 2, 3)``:
    ``[512, 1024, 2048]``). Variants a/b: one 7x7 stem conv ``conv1.conv1``; c/d: a 3-conv stem
    (32, 32, 64 channels); d: avg-pool shortcut; a: the stride on ``branch2a``, else ``branch2b``.
    ``dcn_v2_stages``: stages (0..3; Paddle's ``-1`` is none) whose ``branch2b`` are DCNv2.

    Freezing as Paddle's: with ``freeze_at >= 0`` the stem has ``requires_grad=False`` and, unless
    ``freeze_stem_only``, so do stages ``0..freeze_at``. ``freeze_norm`` turns every BatchNorm into
    a ``FrozenBatchNorm2d`` (running statistics in training too, no trainable affine).
    Learning-rate multipliers: ``param_lr_mults()`` -> ``{parameter name: multiplier}`` (names
    relative to this module): stem 1.0, stage ``i`` ``lr_mult_list[i]``, a DCN's offset conv 1.0,
    as Paddle's ParamAttr. ``norm_decay`` is Paddle's L2 coefficient on the BatchNorm affine; only
    0 exists here: ``no_weight_decay()`` lists the trainable norm parameters (a DCN's own list
    comes from the DCN). ``norm_type="sync_bn"`` builds BatchNorm2d as well:
    ``nn.SyncBatchNorm.convert_sync_batchnorm`` makes it synchronous for multi-GPU training.
    """

    def __init__(self, depth=50, variant="b", return_idx=(0, 1, 2, 3), freeze_at=0,
                 freeze_norm=True, freeze_stem_only=False, norm_type="bn",
                 lr_mult_list=(1.0, 1.0, 1.0, 1.0), num_stages=4, norm_decay=0.0,
                 dcn_v2_stages=(-1,)):
        super().__init__()
        return_idx = (return_idx,) if isinstance(return_idx, int) else tuple(return_idx)
        dcn_v2_stages = (dcn_v2_stages,) if isinstance(dcn_v2_stages, int) else tuple(dcn_v2_stages)
        self._check(depth, variant, return_idx, norm_type, lr_mult_list, num_stages, norm_decay,
                    dcn_v2_stages)
        self.depth, self.variant, self.return_idx = depth, variant, return_idx
        self.norm_decay = norm_decay
        self.lr_mult_list = tuple(float(m) for m in lr_mult_list)
        self.dcn_v2_stages = tuple(i for i in dcn_v2_stages if i >= 0)

        if variant in ("c", "d"):
            stem = [("conv1_1", 3, 32, 3, 2), ("conv1_2", 32, 32, 3, 1), ("conv1_3", 32, 64, 3, 1)]
        else:
            stem = [("conv1", 3, 64, 7, 2)]
        self.conv1 = nn.Sequential(OrderedDict(
            (name, ConvBN(cin, cout, k, s, act="relu")) for name, cin, cout, k, s in stem))

        block = BottleNeck if depth >= 50 else BasicBlock
        stage_channels = [block.expansion * w for w in _STAGE_WIDTHS]
        in_channels = 64
        self.stage_names = []
        for i, count in enumerate(RESNET_DEPTHS[depth][:num_stages]):
            blocks = [block(in_channels if j == 0 else stage_channels[i], _STAGE_WIDTHS[i],
                            stride=2 if i > 0 and j == 0 else 1, project=j == 0, variant=variant,
                            dcn_v2=i in self.dcn_v2_stages)
                      for j in range(count)]
            self.stage_names.append(f"res{i + 2}")
            self.add_module(self.stage_names[-1], nn.Sequential(*blocks))
            in_channels = stage_channels[i]
        self.out_channels = [stage_channels[i] for i in return_idx]
        self.out_strides = [_STRIDES[i] for i in return_idx]

        if freeze_norm:
            FrozenBatchNorm2d.convert(self)
        if freeze_at >= 0:
            frozen = [self.conv1] + ([] if freeze_stem_only else
                                     [getattr(self, n) for n in self.stage_names[:freeze_at + 1]])
            for module in frozen:
                module.requires_grad_(False)

    @staticmethod
    def _check(depth, variant, return_idx, norm_type, lr_mult_list, num_stages, norm_decay,
               dcn_v2_stages):
        if depth not in RESNET_DEPTHS:
            raise UserError(f"backbone depth must be one of {sorted(RESNET_DEPTHS)}, got {depth!r}")
        if variant not in ("a", "b", "c", "d"):
            raise UserError(f"backbone variant must be one of a, b, c, d, got {variant!r}")
        if not 1 <= num_stages <= 4 or not return_idx or not all(
                0 <= i < num_stages for i in return_idx):
            raise UserError(f"backbone return_idx {list(return_idx)} must index the "
                            f"{num_stages} stages (num_stages is 1..4)")
        if not all(-1 <= i < num_stages for i in dcn_v2_stages):
            raise UserError(f"backbone dcn_v2_stages {list(dcn_v2_stages)} must index the "
                            f"{num_stages} stages (or be -1: none)")
        if norm_type not in ("bn", "sync_bn"):
            raise UserError(f"backbone norm_type must be bn or sync_bn, got {norm_type!r}")
        if len(lr_mult_list) != 4:
            raise UserError(f"backbone lr_mult_list needs 4 values, got {list(lr_mult_list)}")
        if norm_decay != 0:
            raise UserError(f"backbone norm_decay {norm_decay!r}: only 0 (no L2 decay on the "
                            "norm affine, Paddle's default) is supported")

    def param_lr_mults(self):
        """``{parameter name: learning-rate multiplier}`` for every parameter of this module."""
        stage_mults = {f"res{i + 2}": m for i, m in enumerate(self.lr_mult_list)}
        mults = {name: stage_mults.get(name.split(".", 1)[0], 1.0)
                 for name, _ in self.named_parameters()}
        for prefix, module in self.named_modules():
            if isinstance(module, DeformableConvV2):
                mults.update({f"{prefix}.{k}": v for k, v in module.param_lr_mults().items()})
        return mults

    def no_weight_decay(self):
        """Names of the norm parameters (Paddle's ``L2Decay(norm_decay=0)`` on them)."""
        return [f"{prefix}.{name}" for prefix, module in self.named_modules()
                if isinstance(module, nn.modules.batchnorm._BatchNorm)
                for name, _ in module.named_parameters(recurse=False)]

    def forward(self, x):
        x = F.max_pool2d(self.conv1(x), kernel_size=3, stride=2, padding=1)
        outs = []
        for i, name in enumerate(self.stage_names):
            x = getattr(self, name)(x)
            if i in self.return_idx:
                outs.append(x)
            if i >= max(self.return_idx):
                break
        return outs

"""PP-HGNetV2 backbone of RT-DETR (PaddleDetection's ``PPHGNetV2``).

Module names are Paddle's (``stem.stem1``, ``stages.2.blocks.1.layers.0.conv1``,
``aggregation_squeeze_conv``, ``lab``, ...), with a ConvBN's submodules ``conv`` / ``bn``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet_lite.models.layers import ConvBN, FrozenBatchNorm2d
from mmdet_lite.utils.errors import UserError

# arch -> (stem channels (in, mid, out), per stage: (in channels, mid channels, out channels,
# blocks, downsample, light block, kernel size, layers per block)), as Paddle's ``arch_configs``.
HGNETV2_ARCHS = {
    "S": ((3, 24, 32), (
        (32, 32, 64, 1, False, False, 3, 3),
        (64, 48, 256, 1, True, False, 3, 3),
        (256, 96, 512, 2, True, True, 5, 3),
        (512, 192, 1024, 1, True, True, 5, 3),
    )),
    "M": ((3, 24, 32), (
        (32, 32, 96, 1, False, False, 3, 4),
        (96, 64, 384, 1, True, False, 3, 4),
        (384, 128, 768, 3, True, True, 5, 4),
        (768, 256, 1536, 1, True, True, 5, 4),
    )),
    "L": ((3, 32, 48), (
        (48, 48, 128, 1, False, False, 3, 6),
        (128, 96, 512, 1, True, False, 3, 6),
        (512, 192, 1024, 3, True, True, 5, 6),
        (1024, 384, 2048, 1, True, True, 5, 6),
    )),
    "X": ((3, 32, 64), (
        (64, 64, 128, 1, False, False, 3, 6),
        (128, 128, 512, 2, True, False, 3, 6),
        (512, 256, 1024, 5, True, True, 5, 6),
        (1024, 512, 2048, 2, True, True, 5, 6),
    )),
    "H": ((3, 48, 96), (
        (96, 96, 192, 2, False, False, 3, 6),
        (192, 192, 512, 3, True, False, 3, 6),
        (512, 384, 1024, 6, True, True, 5, 6),
        (1024, 768, 2048, 3, True, True, 5, 6),
    )),
}
_STRIDES = (4, 8, 16, 32)
# Paddle trains the learnable affine blocks at 1/100 of their stage's learning rate.
LAB_LR_SCALE = 0.01


class LearnableAffineBlock(nn.Module):
    """``scale * x + bias`` with two learnable scalars: (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, scale_value=1.0, bias_value=0.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([scale_value]))
        self.bias = nn.Parameter(torch.tensor([bias_value]))

    def forward(self, x):
        return self.scale * x + self.bias


class ConvBNAct(ConvBN):
    """Paddle's ConvBNAct: ConvBN with ReLU if ``use_act``, then (``use_act and use_lab``) a
    LearnableAffineBlock ``lab``: (N, Cin, H, W) -> (N, Cout, H/s, W/s)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1, use_act=True,
                 use_lab=False, padding=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, groups, padding=padding,
                         act="relu" if use_act else None)
        self.lab = LearnableAffineBlock() if use_act and use_lab else nn.Identity()

    def forward(self, x):
        return self.lab(super().forward(x))


class LightConvBNAct(nn.Module):
    """1x1 ConvBN (no act) -> depthwise k x k ConvBNAct: (N, Cin, H, W) -> (N, Cout, H, W)."""

    def __init__(self, in_channels, out_channels, kernel_size, use_lab=False):
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 1, use_act=False, use_lab=use_lab)
        self.conv2 = ConvBNAct(out_channels, out_channels, kernel_size, groups=out_channels,
                               use_lab=use_lab)

    def forward(self, x):
        return self.conv2(self.conv1(x))


class StemBlock(nn.Module):
    """HGNetV2 stem, stride 4: (N, Cin, H, W) -> (N, Cout, H/4, W/4).

    3x3/2 conv, then two branches (2x2 convs; 2x2/1 max-pool) with Paddle's "SAME" padding (one
    row/column at the bottom/right), concatenated, then 3x3/2 and 1x1 convs.
    """

    def __init__(self, in_channels, mid_channels, out_channels, use_lab=False):
        super().__init__()
        self.stem1 = ConvBNAct(in_channels, mid_channels, 3, 2, use_lab=use_lab)
        self.stem2a = ConvBNAct(mid_channels, mid_channels // 2, 2, padding=0, use_lab=use_lab)
        self.stem2b = ConvBNAct(mid_channels // 2, mid_channels, 2, padding=0, use_lab=use_lab)
        self.stem3 = ConvBNAct(mid_channels * 2, mid_channels, 3, 2, use_lab=use_lab)
        self.stem4 = ConvBNAct(mid_channels, out_channels, 1, use_lab=use_lab)

    def forward(self, x):
        x = self.stem1(x)
        x2 = self.stem2b(F.pad(self.stem2a(F.pad(x, (0, 1, 0, 1))), (0, 1, 0, 1)))
        x1 = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), kernel_size=2, stride=1)
        return self.stem4(self.stem3(torch.cat([x1, x2], dim=1)))


class HGBlock(nn.Module):
    """Paddle's HG_Block: ``layer_num`` chained convs whose outputs (and the input) are
    concatenated, then squeezed (1x1 to Cout/2) and excited (1x1 to Cout); ``identity`` adds the
    input. (N, Cin, H, W) -> (N, Cout, H, W)."""

    def __init__(self, in_channels, mid_channels, out_channels, kernel_size=3, layer_num=6,
                 identity=False, light_block=True, use_lab=False):
        super().__init__()
        self.identity = identity
        self.layers = nn.ModuleList(
            LightConvBNAct(in_channels if i == 0 else mid_channels, mid_channels, kernel_size,
                           use_lab=use_lab) if light_block else
            ConvBNAct(in_channels if i == 0 else mid_channels, mid_channels, kernel_size,
                      use_lab=use_lab)
            for i in range(layer_num))
        total_channels = in_channels + layer_num * mid_channels
        self.aggregation_squeeze_conv = ConvBNAct(total_channels, out_channels // 2, 1,
                                                  use_lab=use_lab)
        self.aggregation_excitation_conv = ConvBNAct(out_channels // 2, out_channels, 1,
                                                     use_lab=use_lab)

    def forward(self, x):
        outputs = [x]
        for layer in self.layers:
            outputs.append(layer(outputs[-1]))
        out = self.aggregation_excitation_conv(self.aggregation_squeeze_conv(torch.cat(outputs, 1)))
        return out + x if self.identity else out


class HGStage(nn.Module):
    """Optional depthwise 3x3/2 ConvBN ``downsample``, then ``block_num`` HGBlocks:
    (N, Cin, H, W) -> (N, Cout, H/s, W/s)."""

    def __init__(self, in_channels, mid_channels, out_channels, block_num, downsample=True,
                 light_block=True, kernel_size=3, layer_num=6, use_lab=False):
        super().__init__()
        self.downsample = (ConvBNAct(in_channels, in_channels, 3, 2, groups=in_channels,
                                     use_act=False, use_lab=use_lab)
                           if downsample else nn.Identity())
        self.blocks = nn.Sequential(*[
            HGBlock(in_channels if i == 0 else out_channels, mid_channels, out_channels,
                    kernel_size, layer_num, identity=i > 0, light_block=light_block,
                    use_lab=use_lab)
            for i in range(block_num)])

    def forward(self, x):
        return self.blocks(self.downsample(x))


class PPHGNetV2(nn.Module):
    """PP-HGNetV2: (N, 3, H, W) -> list of feature maps, one per ``return_idx`` (stages 0..3,
    strides 4, 8, 16, 32). ``out_channels`` / ``out_strides`` describe them (L and X with
    ``(1, 2, 3)``: ``[512, 1024, 2048]``). ``arch``: one of S, M, L, X, H.

    Freezing as Paddle's: with ``freeze_at >= 0`` the stem has ``requires_grad=False`` and, unless
    ``freeze_stem_only``, so do stages ``0..freeze_at``. ``freeze_norm`` turns every BatchNorm into
    a
    ``FrozenBatchNorm2d``. Learning-rate multipliers: ``param_lr_mults()`` -> ``{parameter name:
    multiplier}``: stem ``lr_mult_list[0]``, stage ``i`` ``lr_mult_list[i + 1]``, times
    ``LAB_LR_SCALE`` (0.01) for the learnable affine blocks, as Paddle's ParamAttr.
    """

    def __init__(self, arch="L", return_idx=(1, 2, 3), freeze_stem_only=True, freeze_at=0,
                 freeze_norm=True, lr_mult_list=(1.0, 1.0, 1.0, 1.0, 1.0), use_lab=False):
        super().__init__()
        return_idx = (return_idx,) if isinstance(return_idx, int) else tuple(return_idx)
        if arch not in HGNETV2_ARCHS:
            raise UserError(f"backbone arch must be one of {sorted(HGNETV2_ARCHS)}, got {arch!r}")
        if not return_idx or not all(0 <= i < 4 for i in return_idx):
            raise UserError(f"backbone return_idx {list(return_idx)} must index stages 0..3")
        if len(lr_mult_list) != 5:
            raise UserError(f"backbone lr_mult_list needs 5 values (stem, 4 stages), got "
                            f"{list(lr_mult_list)}")
        self.arch, self.return_idx = arch, return_idx
        self.lr_mult_list = tuple(float(m) for m in lr_mult_list)
        stem_channels, stage_configs = HGNETV2_ARCHS[arch]
        self.stem = StemBlock(*stem_channels, use_lab=use_lab)
        self.stages = nn.ModuleList(
            HGStage(cin, cmid, cout, blocks, down, light, k, layers, use_lab=use_lab)
            for cin, cmid, cout, blocks, down, light, k, layers in stage_configs)
        self.out_channels = [stage_configs[i][2] for i in return_idx]
        self.out_strides = [_STRIDES[i] for i in return_idx]

        if freeze_norm:
            FrozenBatchNorm2d.convert(self)
        if freeze_at >= 0:
            self.stem.requires_grad_(False)
            if not freeze_stem_only:
                for stage in self.stages[:freeze_at + 1]:
                    stage.requires_grad_(False)

    def param_lr_mults(self):
        """``{parameter name: learning-rate multiplier}`` for every parameter of this module."""
        mults = {}
        for name, _ in self.named_parameters():
            parts = name.split(".")
            mult = self.lr_mult_list[0 if parts[0] == "stem" else int(parts[1]) + 1]
            mults[name] = mult * LAB_LR_SCALE if "lab" in parts else mult
        return mults

    def forward(self, x):
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.return_idx:
                outs.append(x)
            if i >= max(self.return_idx):
                break
        return outs

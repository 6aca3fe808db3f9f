"""The forward pass of the original SOLO repository's SOLOv2 (WXinlong/SOLO, commit f4cd03b),
transcribed as plain functions on its own state-dict names, for checking our converted model.

Written from SOLO's ``simple_test`` path in eval mode: ``backbones/resnet.py`` (Bottleneck,
``style='pytorch'``: stride on ``conv2``; BN with running statistics, eps 1e-5),
``necks/fpn.py`` (laterals, nearest 2x top-down sums, 3x3 outputs, P6 = ``max_pool2d(P5, 1,
stride=2)``), ``anchor_heads/solov2_head.py`` (``split_feats``; ``forward_single``:
CoordConv ``cat([x, y])`` before the bilinear resize to the grid, towers of conv + GN(32) +
ReLU; the raw logits, before ``eval=True``'s sigmoid and ``points_nms``) and
``mask_heads/mask_feat_head.py`` (level 0 one conv, level i i convs each followed by a bilinear
2x upsampling, CoordConv on level 3, the sum through ``conv_pred``). Not mmdetection itself
(unavailable here): a transcription.
"""
import torch
import torch.nn.functional as F

MMDET_MEAN = (123.675, 116.28, 103.53)
MMDET_STD = (58.395, 57.12, 57.375)
_GN_GROUPS = 32


def _bn(x, sd, prefix):
    return F.batch_norm(x, sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"],
                        sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], False, 0.0, 1e-5)


def _conv(x, sd, prefix, stride=1, padding=0):
    return F.conv2d(x, sd[f"{prefix}.weight"], sd.get(f"{prefix}.bias"), stride, padding)


def _conv_module_gn(x, sd, prefix, padding):
    """ConvModule(conv, GN, ReLU) of the heads."""
    x = _conv(x, sd, f"{prefix}.conv", padding=padding)
    x = F.group_norm(x, _GN_GROUPS, sd[f"{prefix}.gn.weight"], sd[f"{prefix}.gn.bias"], 1e-5)
    return F.relu(x)


def _coord(x):
    x_range = torch.linspace(-1, 1, x.shape[-1])
    y_range = torch.linspace(-1, 1, x.shape[-2])
    y, xs = torch.meshgrid(y_range, x_range, indexing="ij")
    n = x.shape[0]
    return torch.cat([xs.expand([n, 1, -1, -1]), y.expand([n, 1, -1, -1])], 1)


def resnet(x, sd, blocks=(3, 4, 6, 3)):
    x = F.relu(_bn(_conv(x, sd, "backbone.conv1", stride=2, padding=3), sd, "backbone.bn1"))
    x = F.max_pool2d(x, 3, 2, 1)
    outs = []
    for stage, count in enumerate(blocks):
        for j in range(count):
            p = f"backbone.layer{stage + 1}.{j}"
            stride = 2 if stage > 0 and j == 0 else 1
            out = F.relu(_bn(_conv(x, sd, f"{p}.conv1"), sd, f"{p}.bn1"))
            out = F.relu(_bn(_conv(out, sd, f"{p}.conv2", stride, 1), sd, f"{p}.bn2"))
            out = _bn(_conv(out, sd, f"{p}.conv3"), sd, f"{p}.bn3")
            identity = x
            if f"{p}.downsample.0.weight" in sd:
                identity = _bn(_conv(x, sd, f"{p}.downsample.0", stride), sd,
                               f"{p}.downsample.1")
            x = F.relu(out + identity)
        outs.append(x)
    return outs


def fpn(inputs, sd):
    laterals = [_conv(x, sd, f"neck.lateral_convs.{i}.conv") for i, x in enumerate(inputs)]
    for i in range(len(laterals) - 1, 0, -1):
        laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], scale_factor=2,
                                                          mode="nearest")
    outs = [_conv(lat, sd, f"neck.fpn_convs.{i}.conv", padding=1)
            for i, lat in enumerate(laterals)]
    return outs + [F.max_pool2d(outs[-1], 1, stride=2)]


def bbox_head(feats, sd, num_grids, stacked_convs):
    """Per level ``(cate_pred (N, C, S, S) logits, kernel_pred (N, E, S, S))``."""
    new_feats = (F.interpolate(feats[0], scale_factor=0.5, mode="bilinear", align_corners=False),
                 feats[1], feats[2], feats[3],
                 F.interpolate(feats[4], size=feats[3].shape[-2:], mode="bilinear",
                               align_corners=False))
    results = []
    for idx, x in enumerate(new_feats):
        kernel_feat = torch.cat([x, _coord(x)], 1)
        kernel_feat = F.interpolate(kernel_feat, size=num_grids[idx], mode="bilinear",
                                    align_corners=False)
        cate_feat = kernel_feat[:, :-2, :, :]
        for i in range(stacked_convs):
            kernel_feat = _conv_module_gn(kernel_feat, sd, f"bbox_head.kernel_convs.{i}", 1)
            cate_feat = _conv_module_gn(cate_feat, sd, f"bbox_head.cate_convs.{i}", 1)
        kernel_pred = _conv(kernel_feat, sd, "bbox_head.solo_kernel", padding=1)
        cate_pred = _conv(cate_feat, sd, "bbox_head.solo_cate", padding=1)
        results.append((cate_pred, kernel_pred))
    return results


def mask_feat_head(inputs, sd):
    def level(x, i):
        if i == 0:
            return _conv_module_gn(x, sd, "mask_feat_head.convs_all_levels.0.conv0", 1)
        for j in range(i):
            x = _conv_module_gn(x, sd, f"mask_feat_head.convs_all_levels.{i}.conv{j}", 1)
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return x

    total = level(inputs[0], 0)
    for i in range(1, len(inputs)):
        x = torch.cat([inputs[i], _coord(inputs[i])], 1) if i == 3 else inputs[i]
        total = total + level(x, i)
    return _conv_module_gn(total, sd, "mask_feat_head.conv_pred.0", 0)


def solov2_raw_outputs(images, sd, num_grids, stacked_convs):
    """SOLO's network on 0..255 RGB images (N, 3, H, W), normalised by mmdet's mean / std:
    ``dict(feats`` (the five FPN maps), ``cate_logits`` / ``kernels`` (per level (N, C, S, S) /
    (N, E, S, S)), ``mask_feats`` (N, E, H/4, W/4)``)``."""
    mean = torch.tensor(MMDET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(MMDET_STD).view(1, 3, 1, 1)
    feats = fpn(resnet((images - mean) / std, sd), sd)
    levels = bbox_head(feats, sd, num_grids, stacked_convs)
    return dict(feats=feats, cate_logits=[c for c, _ in levels], kernels=[k for _, k in levels],
                mask_feats=mask_feat_head(feats[:4], sd))

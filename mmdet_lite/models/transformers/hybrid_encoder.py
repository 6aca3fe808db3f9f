"""RT-DETR's HybridEncoder: AIFI (a transformer layer on the coarsest map) then CCFM (a CSP-RepVGG
FPN + PAN). Submodule names are PaddleDetection's, so the converter's rules stay short."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet_lite.models.layers import ConvBN, RepVggBlock, get_activation
from mmdet_lite.models.transformers.position_encoding import sincos_position_embedding_2d


class MultiHeadAttention(nn.Module):
    """Paddle's ``MultiHeadAttention``: queries (B, Lq, E), keys/values (B, Lk, E) -> (B, Lq, E).

    ``in_proj`` packs the q, k, v projections (Paddle's ``in_proj_weight`` / ``in_proj_bias``).
    ``attn_mask`` broadcasts to (B, heads, Lq, Lk): bool with True where attention is blocked
    (``nn.MultiheadAttention``'s convention, that of ``denoising.py``; Paddle's bool masks are the
    inverse) or float added to the logits (HF's, ``-inf`` where blocked).
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0):
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.in_proj = nn.Linear(embed_dim, 3 * embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.in_proj.weight)
        nn.init.zeros_(self.in_proj.bias)
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def _project(self, x, index):
        rows = slice(index * self.embed_dim, (index + 1) * self.embed_dim)
        x = F.linear(x, self.in_proj.weight[rows], self.in_proj.bias[rows])
        return x.reshape(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query, key=None, value=None, attn_mask=None):
        key = query if key is None else key
        value = query if value is None else value
        q, k, v = self._project(query, 0), self._project(key, 1), self._project(value, 2)
        logits = torch.matmul(q, k.transpose(-2, -1)) * (self.head_dim ** -0.5)
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                attn_mask = torch.zeros_like(attn_mask, dtype=logits.dtype).masked_fill(
                    attn_mask, float("-inf"))
            logits = logits + attn_mask
        weights = F.dropout(logits.softmax(-1), self.dropout, self.training)
        out = torch.matmul(weights, v).transpose(1, 2).flatten(2)
        return self.out_proj(out)


class TransformerLayer(nn.Module):
    """Post-norm (or pre-norm) transformer encoder layer: (B, L, d_model) -> (B, L, d_model).

    The position embedding is added to queries and keys only. ``activation``: "gelu", "relu", ...
    """

    def __init__(self, d_model, nhead, dim_feedforward=1024, dropout=0.0, activation="relu",
                 attn_dropout=None, act_dropout=None, normalize_before=False):
        super().__init__()
        self.normalize_before = normalize_before
        self.self_attn = MultiHeadAttention(d_model, nhead,
                                            dropout if attn_dropout is None else attn_dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout if act_dropout is None else act_dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = get_activation(activation)

    def forward(self, src, src_mask=None, pos_embed=None):
        residual = src
        if self.normalize_before:
            src = self.norm1(src)
        q = k = src if pos_embed is None else src + pos_embed
        src = residual + self.dropout1(self.self_attn(q, k, src, attn_mask=src_mask))
        if not self.normalize_before:
            src = self.norm1(src)
        residual = src
        if self.normalize_before:
            src = self.norm2(src)
        src = self.linear2(self.dropout(self.activation(self.linear1(src))))
        src = residual + self.dropout2(src)
        if not self.normalize_before:
            src = self.norm2(src)
        return src


class TransformerEncoder(nn.Module):
    """A stack of ``TransformerLayer`` (``layers``): (B, L, C) -> (B, L, C)."""

    def __init__(self, num_layers, **layer_kwargs):
        super().__init__()
        self.layers = nn.ModuleList(TransformerLayer(**layer_kwargs) for _ in range(num_layers))

    def forward(self, src, src_mask=None, pos_embed=None):
        for layer in self.layers:
            src = layer(src, src_mask=src_mask, pos_embed=pos_embed)
        return src


class CSPRepLayer(nn.Module):
    """CSP block of RepVGG bottlenecks: (N, Cin, H, W) -> (N, Cout, H, W)."""

    def __init__(self, in_channels, out_channels, num_blocks=3, expansion=1.0, act="silu"):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = ConvBN(in_channels, hidden, 1, act=act)
        self.conv2 = ConvBN(in_channels, hidden, 1, act=act)
        self.bottlenecks = nn.Sequential(*[RepVggBlock(hidden, hidden, act=act)
                                           for _ in range(num_blocks)])
        self.conv3 = (ConvBN(hidden, out_channels, 1, act=act) if hidden != out_channels
                      else nn.Identity())

    def forward(self, x):
        return self.conv3(self.bottlenecks(self.conv1(x)) + self.conv2(x))


class HybridEncoder(nn.Module):
    """RT-DETR's efficient hybrid encoder.

    Input: backbone maps ``[(N, in_channels[i], H_i, W_i)]`` at ``feat_strides``. Each is projected
    to ``hidden_dim`` (1x1 conv + BN); the maps at ``use_encoder_idx`` go through a transformer
    encoder with the 2-D sin-cos position embedding of their size (AIFI); a top-down FPN and a
    bottom-up PAN of ``CSPRepLayer`` fuse the levels (CCFM). Output: ``[(N, hidden_dim, H_i,
    W_i)]``.
    ``encoder_layer``: dict(d_model, nhead, dim_feedforward, dropout, activation, ...) of
    ``TransformerLayer`` (d_model must equal ``hidden_dim``). ``eval_size`` is accepted for config
    compatibility: the embedding is always computed for the actual size (Paddle caches it for
    ``eval_size``, identical at that size).
    """

    def __init__(self, in_channels=(512, 1024, 2048), feat_strides=(8, 16, 32), hidden_dim=256,
                 use_encoder_idx=(2,), num_encoder_layers=1, encoder_layer=None,
                 pe_temperature=10000, expansion=1.0, depth_mult=1.0, act="silu", eval_size=None):
        super().__init__()
        layer = dict(d_model=hidden_dim, nhead=8, dim_feedforward=1024, dropout=0.0,
                     activation="gelu")
        layer.update({k: v for k, v in (encoder_layer or {}).items() if k != "name"})
        if layer["d_model"] != hidden_dim:
            raise ValueError(f"encoder_layer.d_model ({layer['d_model']}) must equal hidden_dim "
                             f"({hidden_dim})")
        self.in_channels = list(in_channels)
        self.feat_strides = list(feat_strides)
        self.hidden_dim = hidden_dim
        self.use_encoder_idx = list(use_encoder_idx)
        self.num_encoder_layers = num_encoder_layers
        self.pe_temperature = pe_temperature
        self.eval_size = eval_size
        self.input_proj = nn.ModuleList(ConvBN(c, hidden_dim, 1) for c in self.in_channels)
        self.encoder = nn.ModuleList(TransformerEncoder(num_encoder_layers, **layer)
                                     for _ in self.use_encoder_idx)
        num_blocks = round(3 * depth_mult)
        levels = len(self.in_channels)
        self.lateral_convs = nn.ModuleList(ConvBN(hidden_dim, hidden_dim, 1, act=act)
                                           for _ in range(levels - 1))
        self.fpn_blocks = nn.ModuleList(
            CSPRepLayer(hidden_dim * 2, hidden_dim, num_blocks, expansion, act)
            for _ in range(levels - 1))
        self.downsample_convs = nn.ModuleList(ConvBN(hidden_dim, hidden_dim, 3, stride=2, act=act)
                                              for _ in range(levels - 1))
        self.pan_blocks = nn.ModuleList(
            CSPRepLayer(hidden_dim * 2, hidden_dim, num_blocks, expansion, act)
            for _ in range(levels - 1))

    @property
    def out_channels(self):
        return [self.hidden_dim] * len(self.in_channels)

    def forward(self, feats):
        if len(feats) != len(self.in_channels):
            raise ValueError(f"HybridEncoder expects {len(self.in_channels)} feature maps, "
                             f"got {len(feats)}")
        proj = [conv(feat) for conv, feat in zip(self.input_proj, feats)]
        if self.num_encoder_layers > 0:
            for encoder, index in zip(self.encoder, self.use_encoder_idx):
                n, c, h, w = proj[index].shape
                pos_embed = sincos_position_embedding_2d(w, h, self.hidden_dim, self.pe_temperature,
                                                         proj[index].device, proj[index].dtype)
                memory = encoder(proj[index].flatten(2).transpose(1, 2), pos_embed=pos_embed)
                proj[index] = memory.transpose(1, 2).reshape(n, c, h, w)

        levels = len(self.in_channels)
        inner_outs = [proj[-1]]
        for step, index in enumerate(range(levels - 1, 0, -1)):
            high = self.lateral_convs[step](inner_outs[0])
            inner_outs[0] = high
            upsampled = F.interpolate(high, scale_factor=2.0, mode="nearest")
            fused = torch.cat([upsampled, proj[index - 1]], dim=1)
            inner_outs.insert(0, self.fpn_blocks[step](fused))

        outs = [inner_outs[0]]
        for index in range(levels - 1):
            down = self.downsample_convs[index](outs[-1])
            outs.append(self.pan_blocks[index](torch.cat([down, inner_outs[index + 1]], dim=1)))
        return outs

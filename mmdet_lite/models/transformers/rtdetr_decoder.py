"""RT-DETR's decoder (PaddleDetection's ``RTDETRTransformer``): IoU-aware query selection from the
encoder memory, then deformable-attention decoder layers with iterative box refinement."""
import math
from collections import OrderedDict

import torch
import torch.nn as nn

from mmdet_lite.models.layers import get_activation
from mmdet_lite.models.transformers.deformable_attention import MSDeformableAttention
from mmdet_lite.models.transformers.denoising import (
    get_contrastive_denoising_training_group,
    inverse_sigmoid,
)
from mmdet_lite.models.transformers.hybrid_encoder import MultiHeadAttention
from mmdet_lite.models.transformers.position_encoding import generate_anchors


def _gather_rows(x, index):
    """x (B, N, C), index (B, K) -> (B, K, C)."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class MLP(nn.Module):
    """Linear layers with ReLU between them (``layers``): (..., input_dim) -> (..., output_dim)."""

    def __init__(self, input_dim, hidden_dim, output_dim, num_layers):
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims, dims[1:] + [output_dim]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = x.relu()
        return x


class TransformerDecoderLayer(nn.Module):
    """Self-attention, deformable cross-attention to the memory, FFN (post-norm):
    (B, Q, D) -> (B, Q, D)."""

    def __init__(self, d_model=256, n_head=8, dim_feedforward=1024, dropout=0.0, activation="relu",
                 n_levels=3, n_points=4):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_head, dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.cross_attn = MSDeformableAttention(d_model, n_head, n_levels, n_points)
        self.dropout2 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.activation = get_activation(activation)
        self.dropout3 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.dropout4 = nn.Dropout(dropout)
        self.norm3 = nn.LayerNorm(d_model)
        nn.init.xavier_uniform_(self.linear1.weight)
        nn.init.xavier_uniform_(self.linear2.weight)

    def forward(self, tgt, reference_points, memory, spatial_shapes, attn_mask=None,
                memory_mask=None, query_pos_embed=None):
        q = k = tgt if query_pos_embed is None else tgt + query_pos_embed
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(q, k, tgt, attn_mask=attn_mask)))
        query = tgt if query_pos_embed is None else tgt + query_pos_embed
        tgt2 = self.cross_attn(query, reference_points, memory, spatial_shapes, memory_mask)
        tgt = self.norm2(tgt + self.dropout2(tgt2))
        tgt2 = self.linear2(self.dropout3(self.activation(self.linear1(tgt))))
        return self.norm3(tgt + self.dropout4(tgt2))


class RTDETRTransformer(nn.Module):
    """RT-DETR decoder on the encoder's maps ``[(B, C_i, H_i, W_i)]`` (``backbone_feat_channels``).

    Eval: returns ``(logits (B, Q, num_classes), boxes (B, Q, 4))`` of decoder layer ``eval_idx``
    (the loop stops there, as Paddle's; boxes are normalised cxcywh, Q = ``num_queries``).
    Train: ``forward(feats, targets)`` returns HF-style outputs, dict(logits, pred_boxes (last
    layer), intermediate_logits (B, L, Qt, C), intermediate_reference_points (B, L, Qt, 4),
    enc_topk_logits (B, Q, C), enc_topk_bboxes (B, Q, 4), denoising_meta_values), Qt = denoising +
    ``num_queries`` queries, every decoder layer run. The denoising group is built from
    ``targets`` (list of dicts with ``labels`` or HF's ``class_labels`` (n,) and normalised cxcywh
    ``boxes`` (n, 4)) by ``denoising.get_contrastive_denoising_training_group``, or passed ready as
    ``denoising=(class_embeds (B, Nd, D), bbox_unact (B, Nd, 4), attn_mask (Nd+Q, Nd+Q), meta)``;
    the mask is bool (True = blocked) or float (-inf = blocked).
    """

    def __init__(self, num_classes=80, hidden_dim=256, num_queries=300, position_embed_type="sine",
                 backbone_feat_channels=(512, 1024, 2048), feat_strides=(8, 16, 32), num_levels=3,
                 num_decoder_points=4, nhead=8, num_decoder_layers=6, dim_feedforward=1024,
                 dropout=0.0, activation="relu", num_denoising=100, label_noise_ratio=0.5,
                 box_noise_scale=1.0, learnt_init_query=False, query_pos_head_inv_sig=False,
                 eval_size=None, eval_idx=-1, eps=1e-2):
        super().__init__()
        if position_embed_type not in ("sine", "learned"):
            raise ValueError(f"position_embed_type must be 'sine' or 'learned', "
                             f"got {position_embed_type!r}")
        if (len(backbone_feat_channels) > num_levels
                or len(feat_strides) != len(backbone_feat_channels)):
            raise ValueError("RTDETRTransformer: need len(feat_strides) == "
                             "len(backbone_feat_channels) <= num_levels")
        if not -num_decoder_layers <= eval_idx < num_decoder_layers:
            raise ValueError(f"eval_idx {eval_idx} out of range for {num_decoder_layers} "
                             "decoder layers")
        self.num_classes = num_classes
        self.hidden_dim = hidden_dim
        self.num_queries = num_queries
        self.nhead = nhead
        self.feat_strides = list(feat_strides) + [feat_strides[-1] * 2 ** (i + 1) for i in
                                                  range(num_levels - len(feat_strides))]
        self.num_levels = num_levels
        self.num_decoder_layers = num_decoder_layers
        self.eval_idx = eval_idx % num_decoder_layers
        self.eps = eps
        self.eval_size = eval_size
        self.num_denoising = num_denoising
        self.label_noise_ratio = label_noise_ratio
        self.box_noise_scale = box_noise_scale
        self.learnt_init_query = learnt_init_query
        self.query_pos_head_inv_sig = query_pos_head_inv_sig

        self.input_proj = nn.ModuleList()
        in_channels = list(backbone_feat_channels)
        for level in range(num_levels):
            if level < len(in_channels):
                conv = nn.Conv2d(in_channels[level], hidden_dim, 1, bias=False)
            else:  # extra levels: 3x3 stride-2 convs on the last map, as Paddle
                cin = in_channels[-1] if level == len(in_channels) else hidden_dim
                conv = nn.Conv2d(cin, hidden_dim, 3, 2, 1, bias=False)
            norm = nn.BatchNorm2d(hidden_dim)
            self.input_proj.append(nn.Sequential(OrderedDict(conv=conv, norm=norm)))
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(hidden_dim, nhead, dim_feedforward, dropout, activation,
                                    num_levels, num_decoder_points)
            for _ in range(num_decoder_layers))
        self.denoising_class_embed = nn.Embedding(num_classes, hidden_dim)
        if learnt_init_query:
            self.tgt_embed = nn.Embedding(num_queries, hidden_dim)
        self.query_pos_head = MLP(4, 2 * hidden_dim, hidden_dim, num_layers=2)
        self.enc_output = nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.LayerNorm(hidden_dim))
        self.enc_score_head = nn.Linear(hidden_dim, num_classes)
        self.enc_bbox_head = MLP(hidden_dim, hidden_dim, 4, num_layers=3)
        self.dec_score_head = nn.ModuleList(nn.Linear(hidden_dim, num_classes)
                                            for _ in range(num_decoder_layers))
        self.dec_bbox_head = nn.ModuleList(MLP(hidden_dim, hidden_dim, 4, num_layers=3)
                                           for _ in range(num_decoder_layers))
        self._reset_parameters()

    def _reset_parameters(self):
        bias_cls = -math.log((1 - 0.01) / 0.01)
        for score_head, bbox_head in zip([self.enc_score_head, *self.dec_score_head],
                                         [self.enc_bbox_head, *self.dec_bbox_head]):
            nn.init.constant_(score_head.bias, bias_cls)
            nn.init.zeros_(bbox_head.layers[-1].weight)
            nn.init.zeros_(bbox_head.layers[-1].bias)
        nn.init.xavier_uniform_(self.enc_output[0].weight)
        nn.init.normal_(self.denoising_class_embed.weight)
        if self.learnt_init_query:
            nn.init.xavier_uniform_(self.tgt_embed.weight)
        for layer in self.query_pos_head.layers:
            nn.init.xavier_uniform_(layer.weight)
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj.conv.weight)

    def flatten_memory(self, feats):
        """Project and flatten the maps: memory (B, S, D) and spatial_shapes [(h, w)] per level."""
        proj = [self.input_proj[i](feat) for i, feat in enumerate(feats)]
        for level in range(len(proj), self.num_levels):
            proj.append(self.input_proj[level](feats[-1] if level == len(feats) else proj[-1]))
        spatial_shapes = [tuple(p.shape[2:]) for p in proj]
        memory = torch.cat([p.flatten(2).transpose(1, 2) for p in proj], dim=1)
        return memory, spatial_shapes

    def select_queries(self, memory, spatial_shapes, denoising=None):
        """Score every memory position, keep the top ``num_queries`` as initial queries.

        Returns dict(target (B, Qt, D), ref_unact (B, Qt, 4), enc_topk_logits, enc_topk_bboxes,
        enc_outputs_class (B, S, C) before the top-k, topk_ind (B, Q)).
        """
        anchors, valid_mask = generate_anchors(spatial_shapes, eps=self.eps, device=memory.device,
                                               dtype=memory.dtype)
        output_memory = self.enc_output(torch.where(valid_mask, memory, torch.zeros_like(memory)))
        enc_outputs_class = self.enc_score_head(output_memory)
        topk_ind = torch.topk(enc_outputs_class.max(-1).values, self.num_queries, dim=1).indices
        topk_memory = _gather_rows(output_memory, topk_ind)
        # The box head works position by position: running it on the selected positions only is
        # Paddle's "head on all, then gather" without ~96% of its work (8400 positions at 640).
        anchors = anchors.expand(memory.shape[0], -1, -1)
        ref_unact = self.enc_bbox_head(topk_memory) + _gather_rows(anchors, topk_ind)
        enc_topk_bboxes = ref_unact.sigmoid()
        enc_topk_logits = _gather_rows(enc_outputs_class, topk_ind)
        if self.learnt_init_query:
            target = self.tgt_embed.weight.unsqueeze(0).expand(memory.shape[0], -1, -1)
        else:  # the selected features start the queries; no gradient through them (Paddle)
            target = topk_memory.detach() if self.training else topk_memory
        if self.training:
            ref_unact = ref_unact.detach()
        if denoising is not None:
            target = torch.cat([denoising[0], target], dim=1)
            ref_unact = torch.cat([denoising[1], ref_unact], dim=1)
        return dict(target=target, ref_unact=ref_unact, enc_topk_logits=enc_topk_logits,
                    enc_topk_bboxes=enc_topk_bboxes, enc_outputs_class=enc_outputs_class,
                    topk_ind=topk_ind)

    def denoising_group(self, targets):
        """Contrastive denoising queries for ``targets`` (class_embeds, bbox_unact, mask, meta)."""
        return get_contrastive_denoising_training_group(
            targets, self.num_classes, self.num_queries, self.denoising_class_embed.weight,
            self.num_denoising, self.label_noise_ratio, self.box_noise_scale)

    def decode(self, target, ref_unact, memory, spatial_shapes, attn_mask=None):
        """Run the decoder layers. Returns stacked (logits (L', B, Qt, C), boxes (L', B, Qt, 4)):
        every layer in training, only layer ``eval_idx`` in eval."""
        output = target
        ref_points = ref_detach = ref_unact.sigmoid()
        logits, boxes = [], []
        for i, layer in enumerate(self.layers):
            pos_input = inverse_sigmoid(ref_detach) if self.query_pos_head_inv_sig else ref_detach
            output = layer(output, ref_detach.unsqueeze(2), memory, spatial_shapes, attn_mask,
                           query_pos_embed=self.query_pos_head(pos_input))
            delta = self.dec_bbox_head[i](output)
            inter_ref_bbox = (delta + inverse_sigmoid(ref_detach)).sigmoid()
            if self.training:
                logits.append(self.dec_score_head[i](output))
                # Paddle/DINO "look forward twice": later boxes keep the previous box's gradient.
                boxes.append(inter_ref_bbox if i == 0
                             else (delta + inverse_sigmoid(ref_points)).sigmoid())
            elif i == self.eval_idx:
                logits.append(self.dec_score_head[i](output))
                boxes.append(inter_ref_bbox)
                break
            ref_points = inter_ref_bbox
            ref_detach = inter_ref_bbox.detach() if self.training else inter_ref_bbox
        return torch.stack(logits), torch.stack(boxes)

    def forward(self, feats, targets=None, denoising=None):
        memory, spatial_shapes = self.flatten_memory(feats)
        if self.training and denoising is None and self.num_denoising > 0:
            if targets is None:
                raise ValueError("RTDETRTransformer in train mode needs targets (or denoising=...)")
            denoising = self.denoising_group(targets)
            if denoising[0] is None:
                denoising = None
        if not self.training:
            denoising = None
        queries = self.select_queries(memory, spatial_shapes, denoising)
        attn_mask = denoising[2] if denoising is not None else None
        logits, boxes = self.decode(queries["target"], queries["ref_unact"], memory, spatial_shapes,
                                    attn_mask)
        if not self.training:
            return logits[-1], boxes[-1]
        return dict(logits=logits[-1], pred_boxes=boxes[-1],
                    intermediate_logits=logits.transpose(0, 1),
                    intermediate_reference_points=boxes.transpose(0, 1),
                    enc_topk_logits=queries["enc_topk_logits"],
                    enc_topk_bboxes=queries["enc_topk_bboxes"],
                    denoising_meta_values=denoising[3] if denoising is not None else None)
